import Foundation

/// One JSON-RPC 2.0 client of the control API (one WebSocket connection in
/// `ringsfu serve`). Requests are answered in order on `outbound`, with the
/// public events of the entities this session created pushed in between as
/// notifications, in the order they happened.
///
/// Entities created by a session are closed when the session ends, so a
/// client that disconnects leaves nothing behind.
///
/// A session sees and acts on only what it created (and what hangs from
/// it): another session's ids are answered exactly as unknown ones, dumps
/// list only its own entities, and worker-wide operations (log levels,
/// resource usage) are refused. An admin session sees and may act on
/// everything.
@RingSFUActor
public final class RpcSession {
    public nonisolated let outbound: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    let pool: WorkerPool
    /// Whether this session may act on every entity (the admin secret).
    public let admin: Bool
    var owned = Set<String>()
    var ownedRouters: [Router] = []
    var ownedTransports: [Transport] = []
    var ownedServers: [WebRtcServer] = []
    /// The server's rooms (`room.join`), if it has any.
    public var rooms: (any RpcRoomDirectory)?
    /// Rooms joined, by name: their routers serve this session's
    /// transports without being its own.
    var joinedRooms: [String: Router] = [:]
    private var taps: [(Worker, Int)] = []
    private var ended = false
    /// Bytes queued on `outbound` and not yet written by the connection;
    /// past `maxQueuedBytes` the session ends itself (`overflowed`).
    public private(set) var queuedBytes = 0
    public let maxQueuedBytes: Int
    public private(set) var overflowed = false

    /// Whether `listenInfo.port`/`portRange` may lie outside the worker's
    /// port range (or below 1024): an operator's choice, off by default.
    public let allowAnyPort: Bool
    /// The server-wide announced address (e.g. the public address in front
    /// of NAT) for listen infos that bind a wildcard address and name none.
    public let announcedAddress: String?
    /// Announced addresses of particular workers (by worker id), before
    /// the server-wide one: workers bound to different interfaces.
    public var workerAnnouncedAddresses: [String: String] = [:]

    public init(pool: WorkerPool, admin: Bool = false, maxQueuedBytes: Int = 16 << 20, allowAnyPort: Bool = false, announcedAddress: String? = nil) {
        self.announcedAddress = announcedAddress
        self.pool = pool
        self.admin = admin
        self.allowAnyPort = allowAnyPort
        self.maxQueuedBytes = maxQueuedBytes
        (outbound, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .unbounded)
        for worker in pool.workers {
            let token = worker.addNotificationTap { [weak self] n in self?.forward(n) }
            taps.append((worker, token))
        }
    }

    /// Ends the session: closes what it created and finishes `outbound`.
    public func end() {
        guard !ended else { return }
        ended = true
        for (w, t) in taps { w.removeTap(t) }
        for t in ownedTransports where !t.closed { t.close() }
        for r in ownedRouters where !r.closed { r.close() }
        for s in ownedServers where !s.closed { s.close() }
        leaveRooms()
        continuation.finish()
    }

    /// The connection wrote `bytes` of what `outbound` gave it.
    public func written(_ bytes: Int) {
        queuedBytes = max(0, queuedBytes - bytes)
    }

    /// True for ids this session may see and act on.
    func mine(_ id: String) -> Bool { admin || owned.contains(id) }

    private func forward(_ n: EntityNotification) {
        guard owned.contains(n.entityId) || n.method.hasPrefix("worker.") else { return }
        send(.object(["jsonrpc": .string("2.0"), "method": .string(n.method), "params": .object(n.params)]))
    }

    private func send(_ value: JSONValue) {
        guard !ended, let data = try? JSONEncoder().encode(value), let text = String(data: data, encoding: .utf8) else { return }
        queuedBytes += data.count
        guard queuedBytes <= maxQueuedBytes else {
            // A client that does not read: it is cut off rather than let the
            // server's memory grow; its entities close as on any disconnect.
            overflowed = true
            end()
            return
        }
        continuation.yield(text)
    }

    // MARK: - Requests

    /// Batches may hold at most this many requests.
    public static let maxBatch = 64

    /// Handles one request text (a request, or a batch of them as a JSON
    /// array) and queues its response on `outbound`.
    public func handle(_ text: String) async {
        let request: JSONValue
        do {
            request = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            return send(Self.errorResponse(id: .null, RpcError(code: -32700, message: "parse error: invalid JSON", type: "TypeError")))
        }
        guard case .array(let batch) = request else {
            if let response = await respond(to: request) { send(response) }
            return
        }
        // JSON-RPC 2.0 batch: one array of the answers (none for notifications).
        guard !batch.isEmpty else {
            return send(Self.errorResponse(id: .null, RpcError(code: -32600, message: "invalid request: empty batch", type: "TypeError")))
        }
        guard batch.count <= Self.maxBatch else {
            return send(Self.errorResponse(id: .null, RpcError(code: -32600, message: "invalid request: batch of \(batch.count) requests (at most \(Self.maxBatch))", type: "TypeError")))
        }
        var answers: [JSONValue] = []
        for item in batch {
            if let response = await respond(to: item) { answers.append(response) }
        }
        if !answers.isEmpty { send(.array(answers)) }
    }

    /// A binary WebSocket message: the API speaks JSON text only.
    public func rejectBinary() {
        send(Self.errorResponse(id: .null, RpcError(code: -32600, message: "invalid request: binary messages are not accepted; send JSON-RPC as text", type: "TypeError")))
    }

    /// The response to one request (nil for a notification).
    private func respond(to request: JSONValue) async -> JSONValue? {
        guard case .object(let obj) = request else {
            return Self.errorResponse(id: .null, RpcError(code: -32600, message: "invalid request: expected an object", type: "TypeError"))
        }
        let id = obj["id"]
        // Ids are kept exactly: strings, null, or integers a double holds
        // exactly (|id| < 2^53); anything else is refused.
        if let id {
            switch id {
            case .string, .null: break
            case .number(let n) where n.rounded() == n && abs(n) < 9_007_199_254_740_992: break
            case .number:
                return Self.errorResponse(id: .null, RpcError(code: -32600, message: "invalid request: id must be a string or an integer below 2^53 in magnitude", type: "TypeError"))
            default:
                return Self.errorResponse(id: .null, RpcError(code: -32600, message: "invalid request: id must be a string, a number or null", type: "TypeError"))
            }
        }
        guard obj["jsonrpc"]?.stringValue == "2.0", let method = obj["method"]?.stringValue else {
            return Self.errorResponse(id: id ?? .null, RpcError(code: -32600, message: "invalid request: expected {\"jsonrpc\":\"2.0\",\"method\":...}", type: "TypeError"))
        }
        let params = obj["params"] ?? .object([:])
        guard case .object = params else {
            return id.map { Self.errorResponse(id: $0, RpcError(code: -32602, message: "invalid params: expected an object", type: "TypeError")) }
        }
        do {
            let result = try await dispatch(method, params)
            // A request without id is a notification: no answer.
            return id.map { .object(["jsonrpc": .string("2.0"), "id": $0, "result": result]) }
        } catch let error as RpcError {
            return id.map { Self.errorResponse(id: $0, error) }
        } catch let error as SFUError {
            return id.map { Self.errorResponse(id: $0, RpcError(error)) }
        } catch {
            return id.map { Self.errorResponse(id: $0, RpcError(code: -32603, message: "\(error)", type: "Error")) }
        }
    }

    private static func errorResponse(id: JSONValue, _ error: RpcError) -> JSONValue {
        .object(["jsonrpc": .string("2.0"), "id": id, "error": .object([
            "code": .number(Double(error.code)), "message": .string(error.message),
            "data": .object(["type": .string(error.type)]),
        ])])
    }

    struct RpcError: Error {
        var code: Int
        var message: String
        var type: String

        init(code: Int, message: String, type: String) {
            self.code = code
            self.message = message
            self.type = type
        }

        init(_ e: SFUError) {
            code = switch e {
            case .invalidArgument: -32602
            case .unsupported: -32001
            case .invalidState: -32002
            case .failure: -32000
            }
            message = e.message
            type = e.typeName
        }
    }

    func string(_ params: JSONValue, _ key: String) throws(SFUError) -> String {
        guard let v = params[key] else { throw .invalidArgument("missing params.\(key)") }
        guard let s = v.stringValue, !s.isEmpty else { throw .invalidArgument("invalid params.\(key): expected a non-empty string") }
        return s
    }

    /// Binary payloads travel as base64 strings.
    func base64(_ params: JSONValue, _ key: String) throws(SFUError) -> [UInt8] {
        let text = try string(params, key)
        guard let data = Data(base64Encoded: text) else { throw .invalidArgument("invalid params.\(key): expected base64") }
        return Array(data)
    }

    func traceTypes(_ params: JSONValue) throws(SFUError) -> [String] {
        guard case .array(let items)? = params["types"] else { throw .invalidArgument("missing or invalid params.types: expected an array of strings") }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw .invalidArgument("invalid params.types: expected an array of strings") }
            out.append(s)
        }
        return out
    }

    /// `joined`: a joined room's router will do (to create transports and
    /// read capabilities, not to close or dump it).
    func router(_ p: JSONValue, joined: Bool = false) throws(SFUError) -> Router {
        let id = try string(p, "routerId")
        if joined, let r = joinedRooms.values.first(where: { $0.id == id && !$0.closed }) { return r }
        guard mine(id), let r = pool.router(id: id) else { throw lookupFailure("Router", id) }
        return r
    }
    func transport(_ p: JSONValue) throws(SFUError) -> Transport {
        let id = try string(p, "transportId")
        guard mine(id), let t = pool.transport(id: id) else { throw lookupFailure("Transport", id) }
        return t
    }
    func producer(_ p: JSONValue) throws(SFUError) -> Producer {
        let id = try string(p, "producerId")
        guard mine(id), let x = pool.producer(id: id) else { throw lookupFailure("Producer", id) }
        return x
    }
    func consumer(_ p: JSONValue) throws(SFUError) -> Consumer {
        let id = try string(p, "consumerId")
        guard mine(id), let x = pool.consumer(id: id) else { throw lookupFailure("Consumer", id) }
        return x
    }
    func dataProducer(_ p: JSONValue) throws(SFUError) -> DataProducer {
        let id = try string(p, "dataProducerId")
        guard mine(id), let x = pool.dataProducer(id: id) else { throw lookupFailure("DataProducer", id) }
        return x
    }
    func dataConsumer(_ p: JSONValue) throws(SFUError) -> DataConsumer {
        let id = try string(p, "dataConsumerId")
        guard mine(id), let x = pool.dataConsumer(id: id) else { throw lookupFailure("DataConsumer", id) }
        return x
    }
    func rtpObserver(_ p: JSONValue) throws(SFUError) -> RtpObserver {
        let id = try string(p, "rtpObserverId")
        guard mine(id), let x = pool.rtpObserver(id: id) else { throw lookupFailure("RtpObserver", id) }
        return x
    }
    func worker(_ p: JSONValue) throws(SFUError) -> Worker {
        if let value = p["workerId"] {
            guard let id = value.stringValue else { throw .invalidArgument("invalid params.workerId: expected a string") }
            guard let w = pool.worker(id: id) else { throw .invalidArgument("unknown workerId \"\(id)\"") }
            return w
        }
        guard let w = pool.leastLoaded() else { throw .invalidState("no open worker") }
        return w
    }

    /// A closed entity is no longer indexed; one this session created is
    /// reported as closed (InvalidStateError), anything else as unknown.
    func lookupFailure(_ kind: String, _ id: String) -> SFUError {
        owned.contains(id) ? .invalidState("\(kind) closed") : .invalidArgument("unknown \(kind.prefix(1).lowercased() + kind.dropFirst())Id \"\(id)\"")
    }

    /// A client may bind only ports of the worker's configured range (so
    /// never a privileged one, nor one an operator kept for something else).
    func checkPorts(_ infos: [TransportListenInfo?], worker: Worker?, field: String) throws(SFUError) {
        guard !allowAnyPort, let worker else { return }
        let range = Int(worker.portRange.lowerBound)...Int(worker.portRange.upperBound)
        for (i, info) in infos.enumerated() {
            guard let info else { continue }
            let name = infos.count > 1 && field.hasSuffix("s") ? "\(field)[\(i)]" : field
            if let port = info.port, port != 0, !range.contains(port) || port < 1024 {
                throw .invalidArgument("invalid params.\(name).port \(port): outside the worker's port range \(range.lowerBound)-\(range.upperBound)")
            }
            if let r = info.portRange, !(range.contains(r.min) && range.contains(r.max)) || r.min < 1024 {
                throw .invalidArgument("invalid params.\(name).portRange \(r.min)-\(r.max): outside the worker's port range \(range.lowerBound)-\(range.upperBound)")
            }
        }
    }

    /// A listen info as the transport will use it: one that binds a
    /// wildcard address (`0.0.0.0`, `::`) and announces nothing takes the
    /// server-wide `announcedAddress`. Without one, a WebRTC transport or
    /// server (`candidates`) is refused: its ICE candidates would carry the
    /// wildcard, which no peer can reach.
    func announce(_ info: TransportListenInfo, field: String, candidates: Bool, worker: Worker?) throws(SFUError) -> TransportListenInfo {
        guard info.ip == "0.0.0.0" || info.ip == "::", (info.announcedAddress ?? info.announcedIp) == nil else { return info }
        if let announcedAddress = worker.flatMap({ workerAnnouncedAddresses[$0.id] }) ?? announcedAddress {
            var announced = info
            announced.announcedAddress = announcedAddress
            return announced
        }
        if candidates {
            throw .invalidArgument("invalid params.\(field).ip \(info.ip): a wildcard address is no ICE candidate; give params.\(field).announcedAddress (or start the server with --announced-address)")
        }
        return info
    }

    func announce(_ infos: [TransportListenInfo], field: String, candidates: Bool, worker: Worker?) throws(SFUError) -> [TransportListenInfo] {
        var out: [TransportListenInfo] = []
        for (i, info) in infos.enumerated() { out.append(try announce(info, field: infos.count > 1 ? "\(field)[\(i)]" : field, candidates: candidates, worker: worker)) }
        return out
    }

    /// Worker-wide operations are for the admin.
    func requireAdmin(_ method: String) throws(SFUError) {
        guard admin else { throw .unsupported("\(method) needs the admin token") }
    }

    static let ok: JSONValue = .object([:])

    private func dispatch(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        // Methods are named "<entity>.<verb>"; each family has its own table.
        switch method.prefix { $0 != "." } {
        case "worker", "webRtcServer": return try await workerMethod(method, p)
        case "router", "rtpObserver": return try await routerMethod(method, p)
        case "transport": return try await transportMethod(method, p)
        case "producer", "consumer": return try await mediaMethod(method, p)
        case "dataProducer", "dataConsumer": return try await dataMethod(method, p)
        case "room": return try await roomMethod(method, p)
        default: throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    func plainTransportJSON(_ t: PlainTransport) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(t.id), "tuple": .encoding(t.tuple), "rtcpMux": .bool(t.rtcpMux), "comedia": .bool(t.comedia),
            "sctpParameters": t.sctpParameters.map { .encoding($0) } ?? .null, "sctpState": t.sctpState.map { .string($0) } ?? .null,
            "srtpParameters": t.srtpParameters.map { .encoding($0) } ?? .null,
        ]
        if let r = t.rtcpTuple { o["rtcpTuple"] = .encoding(r) }
        return .object(o)
    }
}
