import ArgumentParser
import Dispatch
import Configuration
import Foundation
import Logging
import Metrics
import Prometheus
import RingSFU
import ServiceLifecycle
import Synchronization

@main
struct RingSFUCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringsfu",
        abstract: "RingSFU: a WebRTC Selective Forwarding Unit.",
        version: RingSFUVersion.current,
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the SFU: rooms over WHIP/WHEP, the demo page at /, and the JSON-RPC control API over WebSocket (/rpc).",
        discussion: """
        Every setting is a flag, a RINGSFU_* environment variable and a key of the JSON file given with \
        --config, in that order of precedence: --rtc-min-port, RINGSFU_RTC_MIN_PORT and "rtcMinPort" \
        are one setting. Lists are JSON arrays in the file and comma-separated in variables.
        """)

    @Option(help: "JSON configuration file (keys: the flags' names in camelCase).")
    var config: String?

    @Option(help: "Address the HTTP/WebSocket server listens on (default 127.0.0.1).")
    var host: String?

    @Option(help: "Port of the HTTP/WebSocket server (default 8080).")
    var port: Int?

    @Option(help: "Number of forwarder workers (default: one per core).")
    var workers: Int?

    @Flag(help: "Pin worker i to CPU i.")
    var pin = false

    @Option(help: "Lowest UDP/TCP port for media (default 10000).")
    var rtcMinPort: Int?

    @Option(help: "Highest UDP/TCP port for media (default 59999).")
    var rtcMaxPort: Int?

    @Option(help: "Log level: trace, debug, info (default), notice, warning, error, critical (or mediasoup's warn, none).")
    var logLevel: String?

    @Option(help: "Secret clients present to use /rpc (Authorization: Bearer, a ringsfu.token.<secret> subprotocol, or ?token=); also accepted for WHIP/WHEP. Without one the server listens on loopback only.")
    var apiToken: String?

    @Option(help: "File holding the API secret (first line).")
    var apiTokenFile: String?

    @Option(help: "Secret of the admin, who sees and acts on every client's entities and the workers.")
    var adminToken: String?

    @Option(help: "File holding the admin secret (first line).")
    var adminTokenFile: String?

    @Option(help: "Largest WebSocket message a client may send, in bytes (default 4 MiB).")
    var maxMessageBytes: Int?

    @Option(help: "Bytes of responses and notifications queued for a client that does not read before it is disconnected (default 16 MiB).")
    var maxQueuedBytes: Int?

    @Flag(help: "Let clients bind media ports outside --rtc-min-port..--rtc-max-port (and below 1024).")
    var allowAnyPort = false

    @Option(name: .customLong("allowed-origin"), help: "A web origin (scheme://host[:port]) whose pages may use /rpc, WHIP/WHEP and /rooms besides the server's own; repeatable; * allows any. Clients that are not browsers send no Origin and are not affected.")
    var allowedOrigins: [String] = []

    @Option(help: "PEM file of the DTLS certificate (with --dtls-private-key-file): one fingerprint for every worker and across restarts. Default: a self-signed ECDSA P-256 certificate per worker.")
    var dtlsCertificateFile: String?

    @Option(help: "PEM file of the DTLS certificate's private key.")
    var dtlsPrivateKeyFile: String?

    @Option(help: "PEM certificate (chain) for HTTPS and WSS on the HTTP port, with --tls-private-key-file.")
    var tlsCertificateFile: String?

    @Option(help: "PEM private key of --tls-certificate-file.")
    var tlsPrivateKeyFile: String?

    @Option(help: "Address announced to peers (ICE candidates, transport tuples) for transports that bind a wildcard address (0.0.0.0 or ::) and name none: the public address in front of NAT.")
    var announcedAddress: String?

    @Option(name: .customLong("worker-announced-address"), help: "The announced address of one worker, in worker order (repeat per worker; an empty value keeps --announced-address): workers bound to different interfaces.")
    var workerAnnouncedAddresses: [String] = []

    @Option(help: "Address the rooms' WHIP/WHEP media transports listen on (default: --host when it is an IP address, else 0.0.0.0, which needs --announced-address).")
    var mediaIp: String?

    @Option(help: "Bearer token WHIP publishers present, in every room without a token of its own.")
    var publishToken: String?

    @Option(help: "Bearer token WHEP players (and GET /rooms) present, in every room without a token of its own.")
    var playToken: String?

    @Option(name: .customLong("room-token"), help: "A room's own token: ROOM:publish:TOKEN or ROOM:play:TOKEN; repeatable.")
    var roomTokens: [String] = []

    @Option(name: .customLong("ice-server"), help: "A STUN or TURN server for WHIP/WHEP clients and the demo page (stun:host:port, turn:host:port?transport=udp, turns:host:443?transport=tcp); repeatable. Sent in Link headers and GET /rooms.")
    var iceServers: [String] = []

    @Option(help: "coturn's static-auth-secret: TURN credentials are made from it (TURN REST API) and expire.")
    var turnSecret: String?

    @Option(help: "Seconds TURN credentials stay valid (default 86400).")
    var turnCredentialLifetime: Int?

    @Option(help: "ICE-TCP connections each worker holds at once (default 128).")
    var maxTcpConnections: Int?

    @Option(help: "Microseconds a worker may let packets gather before a loop turn under moderate load (default 300; 0: never): less CPU per packet for that much latency at most.")
    var coalesceMicroseconds: Int?

    @Option(help: "WHEP players of one room on one worker before the room spills onto another worker through in-process pipes (default 200; a worker over 75 % busy spills too).")
    var roomPlayersPerWorker: Int?

    @Option(help: "Redis HOST:PORT: join the cluster of the nodes using it (rooms homed on one node, played on any through UDP pipes). Redis carries no media.")
    var clusterRedis: String?

    @Option(help: "This node's id in the cluster (default: host name and process id).")
    var nodeId: String?

    @Option(help: "URL other nodes and redirected WHIP clients reach this node's HTTP API at (default http://--host:--port).")
    var nodeUrl: String?

    @Option(help: "Address this node's cluster pipes listen on, reachable by the other nodes (default: the media address).")
    var pipeIp: String?

    @Option(help: "Seconds a graceful shutdown (SIGTERM/SIGINT) may take before the server stops anyway (default 5); a second signal exits at once.")
    var shutdownTimeout: Int?

    /// The flags given, as configuration values (flags win over the rest).
    var flagValues: [AbsoluteConfigKey: ConfigValue] {
        var v: [AbsoluteConfigKey: ConfigValue] = [:]
        func put(_ key: String, _ content: ConfigContent?, secret: Bool = false) {
            if let content { v[AbsoluteConfigKey(stringLiteral: key)] = ConfigValue(content, isSecret: secret) }
        }
        put("host", host.map(ConfigContent.string))
        put("port", port.map(ConfigContent.int))
        put("workers", workers.map(ConfigContent.int))
        put("pin", pin ? .bool(true) : nil)
        put("rtcMinPort", rtcMinPort.map(ConfigContent.int))
        put("rtcMaxPort", rtcMaxPort.map(ConfigContent.int))
        put("logLevel", logLevel.map(ConfigContent.string))
        put("apiToken", apiToken.map(ConfigContent.string), secret: true)
        put("apiTokenFile", apiTokenFile.map(ConfigContent.string))
        put("adminToken", adminToken.map(ConfigContent.string), secret: true)
        put("adminTokenFile", adminTokenFile.map(ConfigContent.string))
        put("maxMessageBytes", maxMessageBytes.map(ConfigContent.int))
        put("maxQueuedBytes", maxQueuedBytes.map(ConfigContent.int))
        put("allowAnyPort", allowAnyPort ? .bool(true) : nil)
        put("allowedOrigins", allowedOrigins.isEmpty ? nil : .stringArray(allowedOrigins))
        put("dtlsCertificateFile", dtlsCertificateFile.map(ConfigContent.string))
        put("dtlsPrivateKeyFile", dtlsPrivateKeyFile.map(ConfigContent.string))
        put("tlsCertificateFile", tlsCertificateFile.map(ConfigContent.string))
        put("tlsPrivateKeyFile", tlsPrivateKeyFile.map(ConfigContent.string))
        put("announcedAddress", announcedAddress.map(ConfigContent.string))
        put("mediaIp", mediaIp.map(ConfigContent.string))
        put("workerAnnouncedAddresses", workerAnnouncedAddresses.isEmpty ? nil : .stringArray(workerAnnouncedAddresses))
        put("publishToken", publishToken.map(ConfigContent.string), secret: true)
        put("playToken", playToken.map(ConfigContent.string), secret: true)
        put("roomTokens", roomTokens.isEmpty ? nil : .stringArray(roomTokens), secret: true)
        put("maxTcpConnections", maxTcpConnections.map(ConfigContent.int))
        put("roomPlayersPerWorker", roomPlayersPerWorker.map(ConfigContent.int))
        put("coalesceMicroseconds", coalesceMicroseconds.map(ConfigContent.int))
        put("shutdownTimeout", shutdownTimeout.map(ConfigContent.int))
        put("iceServers", iceServers.isEmpty ? nil : .stringArray(iceServers))
        put("turnSecret", turnSecret.map(ConfigContent.string), secret: true)
        put("turnCredentialLifetime", turnCredentialLifetime.map(ConfigContent.int))
        put("clusterRedis", clusterRedis.map(ConfigContent.string))
        put("nodeId", nodeId.map(ConfigContent.string))
        put("nodeUrl", nodeUrl.map(ConfigContent.string))
        put("pipeIp", pipeIp.map(ConfigContent.string))
        return v
    }

    func run() async throws {
        let s = try await ServeSettings.resolve(flags: flagValues, environment: ProcessInfo.processInfo.environment, configFile: config)
        let level = try Worker.logLevel(named: s.logLevel)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // One registry for everything that reports through swift-metrics;
        // /metrics exposes it.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let count = s.workers ?? max(1, System.coreCount)
        let pool = await WorkerPool()
        var settings = WorkerSettings(logLevel: s.logLevel, rtcMinPort: s.rtcMinPort, rtcMaxPort: s.rtcMaxPort)
        settings.maxTcpConnections = s.maxTcpConnections
        settings.coalesceMicroseconds = s.coalesceMicroseconds
        settings.dtlsCertificateFile = s.dtlsCertificateFile
        settings.dtlsPrivateKeyFile = s.dtlsPrivateKeyFile
        try await pool.start(count: count, settings: settings, pin: s.pin)
        var limits = ServerLimits()
        limits.apiToken = s.apiToken
        limits.adminToken = s.adminToken
        limits.maxMessageBytes = s.maxMessageBytes
        limits.maxQueuedBytes = s.maxQueuedBytes
        limits.allowAnyPort = s.allowAnyPort
        limits.allowedOrigins = s.allowedOrigins
        limits.announcedAddress = s.announcedAddress
        for (worker, address) in zip(await pool.workers, s.workerAnnouncedAddresses) where !address.isEmpty {
            limits.workerAnnouncedAddresses[worker.id] = address
        }
        limits.serverTokens = RoomTokens(publish: s.publishToken, play: s.playToken)
        limits.roomTokens = s.roomTokens
        limits.iceServers = s.iceServers
        var roomLimits = Rooms.Limits()
        roomLimits.listenIp = s.mediaListenIp
        roomLimits.announcedAddress = s.announcedAddress
        roomLimits.workerAnnouncedAddresses = limits.workerAnnouncedAddresses
        roomLimits.playersPerWorker = s.roomPlayersPerWorker
        let cluster = try s.clusterSettings().map { ClusterNode(settings: $0) }
        let rooms = Rooms(pool: pool, limits: roomLimits, cluster: cluster)
        let host = s.host, port = s.port, shutdownTimeout = s.shutdownTimeout
        let connections = Connections()
        let logger = Logger(label: "ringsfu")
        let auth = "\(limits.apiToken == nil ? "none (loopback only)" : "API token")\(limits.adminToken == nil ? "" : ", admin token")"
        // Announced once the listener is bound (a port in use fails before).
        let listening = ListeningFlag()
        let tls = try s.tlsConfiguration()
        let readiness = Readiness()
        let scheme = tls == nil ? "http" : "https", ws = tls == nil ? "ws" : "wss"
        let app = try ServerApp.build(host: host, port: port, pool: pool, metrics: registry, logLevel: level, limits: limits, connections: connections,
                                      rooms: rooms, cluster: cluster, tls: tls, readiness: readiness) { [host, count] bound in
            listening.set()
            logger.info("ringsfu serving", metadata: ["version": "\(RingSFUVersion.current)", "address": "\(scheme)://\(host):\(bound)", "rpc": "\(ws)://\(host):\(bound)/rpc",
                                                     "metrics": "\(scheme)://\(host):\(bound)/metrics", "workers": "\(count)", "auth": "\(auth)"])
        }
        // SIGTERM/SIGINT: close every client with 1001 and the reason (its
        // entities close as on any disconnect), stop the HTTP server, then
        // the workers; bounded in time whatever clients do. A second signal
        // exits at once.
        var services: [any Service] = [app, LoadSampler(pool: pool)]
        if let cluster { services.append(ClusterHeartbeat(cluster: cluster, rooms: rooms)) }
        var config = ServiceGroupConfiguration(services: services, logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(shutdownTimeout)
        config.maximumCancellationDuration = .seconds(2)
        let group = ServiceGroup(configuration: config)
        ShutdownSignals.install {
            logger.info("shutting down")
            readiness.drain()
            Task {
                await connections.closeAll(reason: "server shutting down")
                await rooms.endAll()
                if let cluster { await cluster.leave() }
                // Let the close frames go out before the listener stops.
                try? await Task.sleep(for: .milliseconds(200))
                await group.triggerGracefulShutdown()
            }
        }
        var failure: (any Error)?
        do {
            try await group.run()
        } catch {
            failure = error
        }
        await pool.closeAll()
        if let failure, !listening.isSet {
            // Never served (the address is in use, say): a failed start.
            logger.error("could not listen on \(host):\(port): \(failure)")
            throw ExitCode.failure
        }
        if let failure { logger.warning("server stopped: \(failure)") }
        logger.info("ringsfu stopped")
    }
}

/// SIGTERM/SIGINT: the first starts a graceful shutdown, a second one
/// exits at once.
enum ShutdownSignals {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    nonisolated(unsafe) static var count = 0

    static func install(_ onFirst: @escaping @Sendable () -> Void) {
        let queue = DispatchQueue(label: "ringsfu.signals")
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            // Handlers run one at a time on the serial queue.
            source.setEventHandler {
                count += 1
                if count == 1 { onFirst() } else { _exit(130) }
            }
            source.resume()
            sources.append(source)
        }
    }
}

enum System {
    static var coreCount: Int {
        #if canImport(Glibc)
        Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        1
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A flag set once from any thread.
final class ListeningFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
