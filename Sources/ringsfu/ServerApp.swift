import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import Prometheus
import RingSFU
import ServiceLifecycle
import Synchronization

/// What the control API accepts and how much a client may cost.
struct ServerLimits: Sendable {
    /// The API secret (nil: none; the server then listens on loopback only)
    /// and the admin secret (sees and acts on everything).
    var apiToken: String? = nil
    var adminToken: String? = nil
    /// Largest WebSocket message (and frame) accepted.
    var maxMessageBytes = 4 << 20
    /// Bytes of responses and notifications queued for one client that does
    /// not read; past it the client is disconnected.
    var maxQueuedBytes = 16 << 20
    /// A ping to every WebSocket client this often; one that has not
    /// answered the previous ping is disconnected (its entities close), so
    /// a vanished client (or cluster node) holds nothing for long.
    var pingInterval: Duration = .seconds(10)
    /// How long a closing WebSocket waits for the client's close frame.
    var closeTimeout: Duration = .seconds(2)
    /// Clients may bind media ports outside the workers' range (and below 1024).
    var allowAnyPort = false
    /// Web origins (`scheme://host[:port]`) whose pages may open `/rpc`
    /// besides the server's own; `*` allows any.
    var allowedOrigins: [String] = []
    /// The address announced for transports that bind a wildcard address
    /// and name none (the public address in front of NAT).
    var announcedAddress: String? = nil
    /// WHIP/WHEP tokens for every room, and per room (which win).
    var serverTokens = RoomTokens()
    var roomTokens: [String: RoomTokens] = [:]
    /// Announced addresses of particular workers, by worker id.
    var workerAnnouncedAddresses: [String: String] = [:]
    /// STUN/TURN servers given to WHIP/WHEP clients.
    var iceServers = IceServers()
}

/// The open WebSocket connections, so that shutdown can tell each client
/// why it is closed (1001) before the HTTP server winds down.
actor Connections {
    private var writers: [Int: WebSocketOutboundWriter] = [:]
    private var next = 0

    func add(_ writer: WebSocketOutboundWriter) -> Int {
        next += 1
        writers[next] = writer
        return next
    }

    func remove(_ id: Int) { writers[id] = nil }

    var count: Int { writers.count }

    /// Sends every client a close frame (1001 and the reason); does not
    /// wait for clients to answer.
    func closeAll(reason: String) {
        for writer in writers.values {
            Task { try? await writer.close(.goingAway, reason: reason) }
        }
    }
}

/// The server's request context: Hummingbird's WebSocket context plus the
/// connection's channel, so that a client can be dropped outright.
struct RpcRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}

/// Who a connection is, once its credentials were checked.
enum ClientRole: Sendable {
    case user, admin
}

/// The HTTP side of `ringsfu serve`: the JSON-RPC WebSocket endpoint, a
/// Prometheus `/metrics` endpoint, a health check, WHIP/WHEP and the demo page.
enum ServerApp {
    static func build(host: String, port: Int, pool: WorkerPool, metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                      logLevel: Logger.Level = .info, limits: ServerLimits = ServerLimits(),
                      connections: Connections = Connections(), rooms: Rooms? = nil, cluster: ClusterNode? = nil, tls: TLSConfiguration? = nil,
                      readiness: Readiness = Readiness(),
                      onRunning: @escaping @Sendable (_ boundPort: Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let router = Hummingbird.Router(context: RpcRequestContext.self)
        router.add(middleware: WebOriginMiddleware(limits: limits))
        let rooms = rooms ?? Rooms(pool: pool, limits: Rooms.Limits())
        WhipWhep.register(router, rooms: rooms, limits: limits, cluster: cluster)
        if let cluster { ClusterStatus.register(router, cluster: cluster, limits: limits) }
        router.get("/health") { _, _ in
            // Healthy while every worker's forwarder runs: a dead worker (a
            // fatal ring error) makes the server unfit for new rooms.
            let workers = await pool.workers
            let dead = await Health.deadWorkers(workers)
            let body = "{\"status\":\"\(dead.isEmpty ? "ok" : "degraded")\",\"workers\":\(workers.count),\"deadWorkers\":\(dead.count),\"version\":\"\(RingSFUVersion.current)\"}"
            return Response(status: dead.isEmpty && !workers.isEmpty ? .ok : .serviceUnavailable,
                            headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/ready") { _, _ in
            // Ready for new sessions: not shutting down and a worker to put
            // them on (a load balancer stops sending clients otherwise).
            let live = await Health.liveWorkers(pool.workers)
            let ready = !readiness.draining && live > 0
            let reason = readiness.draining ? "shutting down" : live == 0 ? "no live worker" : "ready"
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"\(reason)\",\"liveWorkers\":\(live)}")))
        }
        let factory = PrometheusMetricsFactory(registry: metrics)
        router.get("/metrics") { _, _ in
            // Fresh figures from every worker, then the text exposition format.
            for worker in await pool.workers { await worker.publishMetrics(factory: factory) }
            // swift-metrics carries no help text: every family gets its # HELP here.
            let text = RingSFUMetrics.annotate(String(decoding: metrics.emitToBuffer(), as: UTF8.self))
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: DemoPage.html)))
        }
        router.ws("/rpc", shouldUpgrade: { request, _ in
            var headers = HTTPFields()
            if let protocolName = answeredProtocol(request) { headers[.secWebSocketProtocol] = protocolName }
            return .upgrade(headers)
        }) { inbound, outbound, context in
            // Hummingbird answers a refused upgrade with a bare 400; a client
            // (a browser above all, which sees no HTTP status) learns more from
            // a close frame with the reason, before any session exists.
            guard originAllowed(context.request, limits: limits) else {
                try? await outbound.close(.policyViolation, reason: "this page's origin may not use the control API (see --allowed-origin)")
                return
            }
            guard let role = authenticate(context.request, limits: limits) else {
                try? await outbound.close(.policyViolation, reason: "missing or wrong API token")
                return
            }
            let id = await connections.add(outbound)
            defer { Task { await connections.remove(id) } }
            let channel = context.requestContext.channel
            try await serveRpc(pool: pool, inbound: inbound, outbound: outbound, role: role, limits: limits, rooms: rooms) { channel.close(promise: nil) }
        }
        var logger = Logger(label: "ringsfu.http")
        logger.logLevel = logLevel
        let plain = HTTPServerBuilder.http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(ws: .init(
            maxFrameSize: limits.maxMessageBytes, autoPing: .enabled(timePeriod: limits.pingInterval), closeTimeout: limits.closeTimeout,
            validateUTF8: true)))
        return Application(
            router: router,
            // HTTPS and WSS on the same port when a certificate is given.
            server: try tls.map { try HTTPServerBuilder.tls(plain, tlsConfiguration: $0) } ?? plain,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// The subprotocol a browser offers to carry the token (it cannot set
    /// headers on a WebSocket): `ringsfu.token.<token>`, answered `ringsfu`.
    static let protocolName = "ringsfu"
    static let tokenProtocolPrefix = "ringsfu.token."

    /// The subprotocols a client offered.
    static func offeredProtocols(_ request: Request) -> [String] {
        (request.headers[.secWebSocketProtocol] ?? "").split(separator: ",").map { String($0).trimmingSpaces }
    }

    /// `ringsfu` when the client offered it (or a token subprotocol): a
    /// browser fails the connection unless one offered protocol is chosen.
    static func answeredProtocol(_ request: Request) -> String? {
        offeredProtocols(request).contains { $0 == protocolName || $0.hasPrefix(tokenProtocolPrefix) } ? protocolName : nil
    }

    /// A browser names the page that opens a WebSocket in `Origin`; pages of
    /// other sites must not drive the control API (with a token they found,
    /// or a user's loopback server). Clients that are not browsers send no
    /// Origin and pass. Allowed: the server's own origin (the Origin's
    /// host and port are the request's Host) and `allowedOrigins`.
    static func originAllowed(_ request: Request, limits: ServerLimits) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        let normalized = origin.lowercased().trimmingSpaces
        // Browsers name pages (http, https, or "null"); other clients may
        // send anything (Hummingbird's WebSocket client sends ws://host)
        // and could as well send nothing: only pages are held to the check.
        guard normalized == "null" || normalized.hasPrefix("http://") || normalized.hasPrefix("https://") else { return true }
        if limits.allowedOrigins.contains(where: { $0 == "*" || $0.lowercased() == normalized }) { return true }
        guard let host = request.head.authority?.lowercased(),
              let schemeEnd = normalized.range(of: "://") else { return false }
        // "null" (a sandboxed page or a file) never matches.
        let authority = normalized[schemeEnd.upperBound...].prefix { $0 != "/" }
        let scheme = normalized[..<schemeEnd.lowerBound]
        let defaultPort = scheme == "https" ? ":443" : ":80"
        return authority == host || authority + defaultPort == host || authority == host + defaultPort
    }

    /// Checks the connection's credentials: `Authorization: Bearer`, a
    /// `ringsfu.token.` subprotocol, or a `token` query parameter, against
    /// the admin and API secrets (compared in constant time). Without an API
    /// secret (a loopback-only server) every client is a user. Nil: refused.
    static func authenticate(_ request: Request, limits: ServerLimits) -> ClientRole? {
        var offered: [String] = []
        if let auth = request.headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { offered.append(String(parts[1]).trimmingSpaces) }
        }
        for p in offeredProtocols(request) where p.hasPrefix(tokenProtocolPrefix) { offered.append(String(p.dropFirst(tokenProtocolPrefix.count))) }
        if let token = request.uri.queryParameters["token"] { offered.append(String(token)) }
        if let admin = limits.adminToken, offered.contains(where: { constantTimeEqual($0, admin) }) { return .admin }
        guard let api = limits.apiToken else { return .user }
        return offered.contains { constantTimeEqual($0, api) } ? .user : nil
    }

    /// Compares two secrets in time that depends only on their lengths.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(truncatingIfNeeded: x.count ^ y.count)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }

    /// One JSON-RPC session per connection: requests in order (so at most one
    /// is in flight per client), responses and notifications through one
    /// writer so their order is kept. A client that stops reading is cut off
    /// when its queue passes the limit (close 1008). Shutdown closes clients
    /// through `Connections` (1001).
    static func serveRpc(pool: WorkerPool, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
                         role: ClientRole, limits: ServerLimits, rooms: Rooms? = nil, drop: @escaping @Sendable () -> Void = {}) async throws {
        let session = await RpcSession(pool: pool, admin: role == .admin, maxQueuedBytes: limits.maxQueuedBytes, allowAnyPort: limits.allowAnyPort, announcedAddress: limits.announcedAddress)
        await session.setRooms(rooms)
        await session.setWorkerAnnouncedAddresses(limits.workerAnnouncedAddresses)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await text in session.outbound {
                        try await outbound.write(.text(text))
                        await session.written(text.utf8.count)
                    }
                    if await session.overflowed {
                        try? await outbound.close(.policyViolation, reason: "outbound queue over \(limits.maxQueuedBytes) bytes: read your responses")
                    }
                }
                var failure: (any Error)? = nil
                do {
                    for try await message in inbound.messages(maxSize: limits.maxMessageBytes) {
                        switch message {
                        case .text(let text): await session.handle(text)
                        case .binary: await session.rejectBinary()
                        }
                        if await session.overflowed {
                            // The writer may be parked in a write the client never
                            // drains: after a moment for the close frame, drop the
                            // connection outright.
                            Task {
                                try? await Task.sleep(for: limits.closeTimeout)
                                drop()
                            }
                            break
                        }
                    }
                } catch {
                    // A broken connection ends the session like a clean close;
                    // a protocol error (e.g. invalid UTF-8: 1007) is passed on so
                    // the connection closes with its code.
                    failure = error
                }
                await session.end()
                try await group.waitForAll()
                if let failure { throw failure }
            }
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Worker liveness for `/health`, read on the entities' actor.
enum Health {
    @RingSFUActor
    static func deadWorkers(_ workers: [Worker]) -> [Worker] {
        workers.filter { $0.died || $0.closed }
    }

    @RingSFUActor
    static func liveWorkers(_ workers: [Worker]) -> Int {
        workers.count { !$0.died && !$0.closed }
    }
}

/// Whether the server takes new sessions: set to draining when a graceful
/// shutdown starts, so that `/ready` turns 503 before the listener stops.
final class Readiness: Sendable {
    private let state = Mutex(false)
    func drain() { state.withLock { $0 = true } }
    var draining: Bool { state.withLock { $0 } }
}
