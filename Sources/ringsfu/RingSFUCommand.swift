import ArgumentParser
import Dispatch
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
    static let configuration = CommandConfiguration(abstract: "Run the SFU with its JSON-RPC control API over WebSocket (/rpc).")

    @Option(help: "Address the HTTP/WebSocket control server listens on.")
    var host = "127.0.0.1"

    @Option(help: "Port of the HTTP/WebSocket control server.")
    var port = 8080

    @Option(help: "Number of forwarder workers (default: one per core).")
    var workers: Int?

    @Flag(help: "Pin worker i to CPU i.")
    var pin = false

    @Option(help: "Lowest UDP port for media.")
    var rtcMinPort = 10000

    @Option(help: "Highest UDP port for media.")
    var rtcMaxPort = 59999

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (or mediasoup's warn, none).")
    var logLevel = "info"

    @Option(help: "Secret clients present to use /rpc (Authorization: Bearer, a ringsfu.token.<secret> subprotocol, or ?token=). Also RINGSFU_API_TOKEN. Without one the server listens on loopback only.")
    var apiToken: String?

    @Option(help: "File holding the API secret (first line).")
    var apiTokenFile: String?

    @Option(help: "Secret of the admin, who sees and acts on every client's entities and the workers. Also RINGSFU_ADMIN_TOKEN.")
    var adminToken: String?

    @Option(help: "File holding the admin secret (first line).")
    var adminTokenFile: String?

    @Option(help: "Largest WebSocket message a client may send, in bytes.")
    var maxMessageBytes = 4 << 20

    @Option(help: "Bytes of responses and notifications queued for a client that does not read before it is disconnected.")
    var maxQueuedBytes = 16 << 20

    @Flag(help: "Let clients bind media ports outside --rtc-min-port..--rtc-max-port (and below 1024).")
    var allowAnyPort = false

    @Option(name: .customLong("allowed-origin"), help: "A web origin (scheme://host[:port]) whose pages may open /rpc besides the server's own; repeatable; * allows any. Clients that are not browsers send no Origin and are not affected.")
    var allowedOrigins: [String] = []

    @Option(help: "PEM file of the DTLS certificate (with --dtls-private-key-file): one fingerprint for every worker and across restarts. Default: a self-signed ECDSA P-256 certificate per worker.")
    var dtlsCertificateFile: String?

    @Option(help: "PEM file of the DTLS certificate's private key.")
    var dtlsPrivateKeyFile: String?

    @Option(help: "Address announced to peers (ICE candidates, transport tuples) for transports that bind a wildcard address (0.0.0.0 or ::) and name none: the public address in front of NAT. Also RINGSFU_ANNOUNCED_ADDRESS.")
    var announcedAddress: String?

    @Option(help: "Address the rooms' WHIP/WHEP media transports listen on (default: --host when it is an IP address, else 0.0.0.0, which needs --announced-address).")
    var mediaIp: String?

    @Option(help: "Bearer token WHIP publishers present, in every room without a token of its own. Also RINGSFU_PUBLISH_TOKEN.")
    var publishToken: String?

    @Option(help: "Bearer token WHEP players (and GET /rooms) present, in every room without a token of its own. Also RINGSFU_PLAY_TOKEN.")
    var playToken: String?

    @Option(name: .customLong("room-token"), help: "A room's own token: ROOM:publish:TOKEN or ROOM:play:TOKEN; repeatable.")
    var roomTokens: [String] = []

    @Option(help: "ICE-TCP connections each worker holds at once.")
    var maxTcpConnections = 128

    @Option(help: "Seconds a graceful shutdown (SIGTERM/SIGINT) may take before the server stops anyway; a second signal exits at once.")
    var shutdownTimeout = 5

    func validate() throws {
        do { _ = try Worker.logLevel(named: logLevel) } catch { throw ValidationError(error.message) }
        guard maxMessageBytes >= 1024, maxQueuedBytes >= maxMessageBytes else {
            throw ValidationError("--max-message-bytes must be at least 1024 and --max-queued-bytes at least as large")
        }
        guard (1...300).contains(shutdownTimeout) else { throw ValidationError("--shutdown-timeout takes 1 to 300 seconds") }
        let secret = try Self.secret(apiToken, file: apiTokenFile, env: "RINGSFU_API_TOKEN", name: "API")
        if secret == nil, !Self.isLoopback(host) {
            throw ValidationError("refusing to listen on \(host) without an API token: anyone who reaches the port could create, consume and close media. Set --api-token (or --api-token-file, or RINGSFU_API_TOKEN), or listen on 127.0.0.1")
        }
        _ = try Self.secret(adminToken, file: adminTokenFile, env: "RINGSFU_ADMIN_TOKEN", name: "admin")
        _ = try Self.secret(publishToken, file: nil, env: "RINGSFU_PUBLISH_TOKEN", name: "publish")
        _ = try Self.secret(playToken, file: nil, env: "RINGSFU_PLAY_TOKEN", name: "play")
        _ = try Self.parseRoomTokens(roomTokens)
        if let address = Self.announcedAddress(announcedAddress) {
            guard address.count <= 253, address.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".:-".contains($0)) }),
                  address != "0.0.0.0", address != "::" else {
                throw ValidationError("--announced-address takes an IP address or a host name that peers can reach, not \"\(address)\"")
            }
        }
    }

    /// `--room-token ROOM:ROLE:TOKEN` values by room.
    static func parseRoomTokens(_ values: [String]) throws -> [String: RoomTokens] {
        var out: [String: RoomTokens] = [:]
        for v in values {
            let f = v.split(separator: ":", maxSplits: 2).map(String.init)
            guard f.count == 3, Rooms.validName(f[0]), f[1] == "publish" || f[1] == "play" else {
                throw ValidationError("--room-token takes ROOM:publish:TOKEN or ROOM:play:TOKEN, not \"\(v.prefix(40))\"")
            }
            let token = try secret(f[2], file: nil, env: "", name: "room")!
            if f[1] == "publish" { out[f[0], default: RoomTokens()].publish = token } else { out[f[0], default: RoomTokens()].play = token }
        }
        return out
    }

    /// Where rooms' media listens: `--media-ip`, else the HTTP host when it
    /// is an address.
    static func mediaListenIp(_ flag: String?, host: String) -> String {
        if let flag { return flag }
        if host == "localhost" { return "127.0.0.1" }
        let isAddress = host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
        return isAddress ? host : "0.0.0.0"
    }

    /// The announced address from its flag or the environment.
    static func announcedAddress(_ flag: String?) -> String? {
        guard let value = (flag ?? ProcessInfo.processInfo.environment["RINGSFU_ANNOUNCED_ADDRESS"])?.trimmingSpaces, !value.isEmpty else { return nil }
        return value
    }

    /// A secret from its flag, its file or the environment, in that order.
    static func secret(_ flag: String?, file: String?, env: String, name: String) throws -> String? {
        var value = flag
        if value == nil, let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read the \(name) token file \(file)") }
            value = text.split(whereSeparator: \.isNewline).first.map(String.init)
        }
        if value == nil { value = ProcessInfo.processInfo.environment[env] }
        guard let secret = value?.trimmingSpaces, !secret.isEmpty else { return nil }
        guard secret.count >= 16 else { throw ValidationError("the \(name) token must be at least 16 characters") }
        guard secret.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) }) else {
            throw ValidationError("the \(name) token may hold letters, digits and - . _ ~ only (it travels in a header, a subprotocol and a URL)")
        }
        return secret
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func run() async throws {
        let level = try Worker.logLevel(named: logLevel)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // One registry for everything that reports through swift-metrics;
        // /metrics exposes it.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let count = workers ?? max(1, System.coreCount)
        let pool = await WorkerPool()
        var settings = WorkerSettings(logLevel: logLevel, rtcMinPort: rtcMinPort, rtcMaxPort: rtcMaxPort)
        settings.maxTcpConnections = maxTcpConnections
        settings.dtlsCertificateFile = dtlsCertificateFile
        settings.dtlsPrivateKeyFile = dtlsPrivateKeyFile
        try await pool.start(count: count, settings: settings, pin: pin)
        var limits = ServerLimits()
        limits.apiToken = try Self.secret(apiToken, file: apiTokenFile, env: "RINGSFU_API_TOKEN", name: "API")
        limits.adminToken = try Self.secret(adminToken, file: adminTokenFile, env: "RINGSFU_ADMIN_TOKEN", name: "admin")
        limits.maxMessageBytes = maxMessageBytes
        limits.maxQueuedBytes = maxQueuedBytes
        limits.allowAnyPort = allowAnyPort
        limits.allowedOrigins = allowedOrigins
        limits.announcedAddress = Self.announcedAddress(announcedAddress)
        limits.serverTokens = RoomTokens(publish: try Self.secret(publishToken, file: nil, env: "RINGSFU_PUBLISH_TOKEN", name: "publish"),
                                         play: try Self.secret(playToken, file: nil, env: "RINGSFU_PLAY_TOKEN", name: "play"))
        limits.roomTokens = try Self.parseRoomTokens(roomTokens)
        var roomLimits = Rooms.Limits()
        roomLimits.listenIp = Self.mediaListenIp(mediaIp, host: host)
        roomLimits.announcedAddress = limits.announcedAddress
        let rooms = Rooms(pool: pool, limits: roomLimits)
        let connections = Connections()
        let logger = Logger(label: "ringsfu")
        let auth = "\(limits.apiToken == nil ? "none (loopback only)" : "API token")\(limits.adminToken == nil ? "" : ", admin token")"
        // Announced once the listener is bound (a port in use fails before).
        let listening = ListeningFlag()
        let app = ServerApp.build(host: host, port: port, pool: pool, metrics: registry, logLevel: level, limits: limits, connections: connections, rooms: rooms) { [host, count] bound in
            listening.set()
            logger.info("ringsfu serving", metadata: ["version": "\(RingSFUVersion.current)", "address": "http://\(host):\(bound)", "rpc": "ws://\(host):\(bound)/rpc",
                                                     "metrics": "http://\(host):\(bound)/metrics", "workers": "\(count)", "auth": "\(auth)"])
        }
        // SIGTERM/SIGINT: close every client with 1001 and the reason (its
        // entities close as on any disconnect), stop the HTTP server, then
        // the workers; bounded in time whatever clients do. A second signal
        // exits at once.
        var config = ServiceGroupConfiguration(services: [app], logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(shutdownTimeout)
        config.maximumCancellationDuration = .seconds(2)
        let group = ServiceGroup(configuration: config)
        ShutdownSignals.install {
            logger.info("shutting down")
            Task {
                await connections.closeAll(reason: "server shutting down")
                await rooms.endAll()
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
