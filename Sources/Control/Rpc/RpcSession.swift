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
    private let pool: WorkerPool
    /// Whether this session may act on every entity (the admin secret).
    public let admin: Bool
    private var owned = Set<String>()
    private var ownedRouters: [Router] = []
    private var ownedTransports: [Transport] = []
    private var ownedServers: [WebRtcServer] = []
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

    public init(pool: WorkerPool, admin: Bool = false, maxQueuedBytes: Int = 16 << 20, allowAnyPort: Bool = false) {
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
        continuation.finish()
    }

    /// The connection wrote `bytes` of what `outbound` gave it.
    public func written(_ bytes: Int) {
        queuedBytes = max(0, queuedBytes - bytes)
    }

    /// True for ids this session may see and act on.
    private func mine(_ id: String) -> Bool { admin || owned.contains(id) }

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

    private func string(_ params: JSONValue, _ key: String) throws(SFUError) -> String {
        guard let v = params[key] else { throw .invalidArgument("missing params.\(key)") }
        guard let s = v.stringValue, !s.isEmpty else { throw .invalidArgument("invalid params.\(key): expected a non-empty string") }
        return s
    }

    /// Binary payloads travel as base64 strings.
    private func base64(_ params: JSONValue, _ key: String) throws(SFUError) -> [UInt8] {
        let text = try string(params, key)
        guard let data = Data(base64Encoded: text) else { throw .invalidArgument("invalid params.\(key): expected base64") }
        return Array(data)
    }

    private func traceTypes(_ params: JSONValue) throws(SFUError) -> [String] {
        guard case .array(let items)? = params["types"] else { throw .invalidArgument("missing or invalid params.types: expected an array of strings") }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw .invalidArgument("invalid params.types: expected an array of strings") }
            out.append(s)
        }
        return out
    }

    private func router(_ p: JSONValue) throws(SFUError) -> Router {
        let id = try string(p, "routerId")
        guard mine(id), let r = pool.router(id: id) else { throw lookupFailure("Router", id) }
        return r
    }
    private func transport(_ p: JSONValue) throws(SFUError) -> Transport {
        let id = try string(p, "transportId")
        guard mine(id), let t = pool.transport(id: id) else { throw lookupFailure("Transport", id) }
        return t
    }
    private func producer(_ p: JSONValue) throws(SFUError) -> Producer {
        let id = try string(p, "producerId")
        guard mine(id), let x = pool.producer(id: id) else { throw lookupFailure("Producer", id) }
        return x
    }
    private func consumer(_ p: JSONValue) throws(SFUError) -> Consumer {
        let id = try string(p, "consumerId")
        guard mine(id), let x = pool.consumer(id: id) else { throw lookupFailure("Consumer", id) }
        return x
    }
    private func dataProducer(_ p: JSONValue) throws(SFUError) -> DataProducer {
        let id = try string(p, "dataProducerId")
        guard mine(id), let x = pool.dataProducer(id: id) else { throw lookupFailure("DataProducer", id) }
        return x
    }
    private func dataConsumer(_ p: JSONValue) throws(SFUError) -> DataConsumer {
        let id = try string(p, "dataConsumerId")
        guard mine(id), let x = pool.dataConsumer(id: id) else { throw lookupFailure("DataConsumer", id) }
        return x
    }
    private func rtpObserver(_ p: JSONValue) throws(SFUError) -> RtpObserver {
        let id = try string(p, "rtpObserverId")
        guard mine(id), let x = pool.rtpObserver(id: id) else { throw lookupFailure("RtpObserver", id) }
        return x
    }
    private func worker(_ p: JSONValue) throws(SFUError) -> Worker {
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
    private func lookupFailure(_ kind: String, _ id: String) -> SFUError {
        owned.contains(id) ? .invalidState("\(kind) closed") : .invalidArgument("unknown \(kind.prefix(1).lowercased() + kind.dropFirst())Id \"\(id)\"")
    }

    /// A client may bind only ports of the worker's configured range (so
    /// never a privileged one, nor one an operator kept for something else).
    private func checkPorts(_ infos: [TransportListenInfo?], worker: Worker?, field: String) throws(SFUError) {
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

    /// Worker-wide operations are for the admin.
    private func requireAdmin(_ method: String) throws(SFUError) {
        guard admin else { throw .unsupported("\(method) needs the admin token") }
    }

    private static let ok: JSONValue = .object([:])

    private func dispatch(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        switch method {
        // Worker
        case "worker.list":
            return .array(pool.workers.map { .object(["id": .string($0.id), "routerCount": .number(Double($0.routerCount)), "closed": .bool($0.closed)]) })
        case "worker.createRouter":
            struct Params: Decodable { var mediaCodecs: [RtpCodecCapability]?; var appData: AppData? }
            let params = try p.decode(Params.self)
            let w = try worker(p)
            let r = try w.createRouter(mediaCodecs: params.mediaCodecs ?? [], appData: params.appData ?? [:])
            owned.insert(r.id)
            ownedRouters.append(r)
            return .object(["id": .string(r.id), "workerId": .string(w.id), "rtpCapabilities": .encoding(r.rtpCapabilities)])
        case "worker.createWebRtcServer":
            let options = try p.decode(WebRtcServerOptions.self)
            let w = try worker(p)
            try checkPorts(options.listenInfos, worker: w, field: "listenInfos")
            let s = try w.createWebRtcServer(options)
            owned.insert(s.id)
            ownedServers.append(s)
            return .object(["id": .string(s.id), "tuple": .encoding(s.tuple), "tuples": .encoding(s.tuples)])
        case "webRtcServer.close":
            let id = try string(p, "webRtcServerId")
            guard mine(id), let s = pool.workers.lazy.compactMap({ $0.webRtcServers[id] }).first else { throw lookupFailure("WebRtcServer", id) }
            s.close()
            return Self.ok
        case "webRtcServer.dump":
            let id = try string(p, "webRtcServerId")
            guard mine(id), let s = pool.workers.lazy.compactMap({ $0.webRtcServers[id] }).first else { throw lookupFailure("WebRtcServer", id) }
            return .encoding(try s.dump())
        case "worker.updateSettings":
            try requireAdmin(method)
            let level = p["logLevel"]
            guard level == nil || level?.stringValue != nil else { throw SFUError.invalidArgument("invalid params.logLevel (a string)") }
            try worker(p).updateSettings(logLevel: level?.stringValue)
            return Self.ok
        case "worker.getResourceUsage":
            try requireAdmin(method)
            return .encoding(try await worker(p).getResourceUsage())
        case "worker.dump":
            let w = try worker(p)
            if admin { return .encoding(await w.dump()) }
            // Only this session's routers and WebRTC servers; no worker-wide figures.
            return .object(["id": .string(w.id), "routerIds": .array(w.routers.keys.filter { owned.contains($0) }.map { .string($0) }),
                            "webRtcServerIds": .array(w.webRtcServers.keys.filter { owned.contains($0) }.map { .string($0) })])

        // Router
        case "router.close":
            try router(p).close()
            return Self.ok
        case "router.dump":
            return .encoding(try router(p).dump())
        case "router.getRtpCapabilities":
            return .encoding(try router(p).rtpCapabilities)
        case "router.canConsume":
            struct Params: Decodable { var producerId: String; var rtpCapabilities: RtpCapabilities }
            let params = try p.decode(Params.self)
            return .object(["canConsume": .bool(try router(p).canConsume(producerId: params.producerId, rtpCapabilities: params.rtpCapabilities))])
        case "router.createPlainTransport":
            let options = try p.decode(PlainTransportOptions.self)
            let r = try router(p)
            try checkPorts([options.listenInfo], worker: r.worker, field: "listenInfo")
            try checkPorts([options.rtcpListenInfo], worker: r.worker, field: "rtcpListenInfo")
            let t = try r.createPlainTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return plainTransportJSON(t)

        case "router.createWebRtcTransport":
            let options = try p.decode(WebRtcTransportOptions.self)
            if let server = options.webRtcServerId, !mine(server) { throw SFUError.invalidArgument("unknown webRtcServerId \"\(server)\"") }
            let r = try router(p)
            try checkPorts(options.listenInfos ?? [], worker: r.worker, field: "listenInfos")
            let t = try r.createWebRtcTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return .object([
                "id": .string(t.id), "iceParameters": .encoding(t.iceParameters), "iceCandidates": .encoding(t.iceCandidates),
                "dtlsParameters": .encoding(t.dtlsParameters), "sctpParameters": t.sctpParameters.map { .encoding($0) } ?? .null,
                "iceState": .string(t.iceState.rawValue), "dtlsState": .string(t.dtlsState.rawValue), "sctpState": t.sctpState.map { .string($0) } ?? .null,
            ])
        case "transport.restartIce":
            guard let w = try transport(p) as? WebRtcTransport else { throw SFUError.invalidState("restartIce() is only for a WebRtcTransport") }
            return .object(["iceParameters": .encoding(try w.restartIce())])
        case "router.createDirectTransport":
            let options = try p.decode(DirectTransportOptions.self)
            let t = try router(p).createDirectTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return .object(["id": .string(t.id), "maxMessageSize": .number(Double(t.maxMessageSize))])

        case "router.createPipeTransport":
            let options = try p.decode(PipeTransportOptions.self)
            let r = try router(p)
            try checkPorts([options.listenInfo], worker: r.worker, field: "listenInfo")
            let t = try r.createPipeTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return .object(["id": .string(t.id), "tuple": t.tuple.map { .encoding($0) } ?? .null, "srtpParameters": t.srtpParameters.map { .encoding($0) } ?? .null,
                            "sctpParameters": t.sctpParameters.map { .encoding($0) } ?? .null, "sctpState": t.sctpState.map { .string($0) } ?? .null])
        case "router.pipeToRouter":
            let source = try router(p)
            let targetId = try string(p, "targetRouterId")
            guard mine(targetId), let target = pool.router(id: targetId) else { throw lookupFailure("Router", targetId) }
            if p["dataProducerId"] != nil {
                guard p["producerId"] == nil else { throw SFUError.invalidArgument("just producerId or dataProducerId can be given") }
                let dataProducerId = try string(p, "dataProducerId")
                let result = try source.pipeToRouter(dataProducerId: dataProducerId, router: target)
                owned.insert(result.pipeDataConsumer.id)
                owned.insert(result.pipeDataProducer.id)
                return .object(["pipeDataConsumerId": .string(result.pipeDataConsumer.id), "pipeDataProducerId": .string(result.pipeDataProducer.id)])
            }
            let result = try source.pipeToRouter(producerId: try string(p, "producerId"), router: target)
            owned.insert(result.pipeConsumer.id)
            owned.insert(result.pipeProducer.id)
            return .object(["pipeConsumerId": .string(result.pipeConsumer.id), "pipeProducerId": .string(result.pipeProducer.id)])
        case "router.createAudioLevelObserver":
            let options = try p.decode(AudioLevelObserverOptions.self)
            let o = try router(p).createAudioLevelObserver(options)
            owned.insert(o.id)
            return .object(["id": .string(o.id)])

        case "router.createActiveSpeakerObserver":
            let options = try p.decode(ActiveSpeakerObserverOptions.self)
            let o = try router(p).createActiveSpeakerObserver(options)
            owned.insert(o.id)
            return .object(["id": .string(o.id)])

        // RTP observers
        case "rtpObserver.addProducer":
            try rtpObserver(p).addProducer(producerId: try string(p, "producerId"))
            return Self.ok
        case "rtpObserver.removeProducer":
            try rtpObserver(p).removeProducer(producerId: try string(p, "producerId"))
            return Self.ok
        case "rtpObserver.pause":
            try rtpObserver(p).pause()
            return Self.ok
        case "rtpObserver.resume":
            try rtpObserver(p).resume()
            return Self.ok
        case "rtpObserver.close":
            try rtpObserver(p).close()
            return Self.ok

        // Transport
        case "transport.sendRtcp":
            guard let direct = try transport(p) as? DirectTransport else { throw SFUError.invalidState("sendRtcp() is only for a DirectTransport") }
            try direct.sendRtcp(try base64(p, "rtcpPacket"))
            return Self.ok
        case "transport.connect":
            struct Params: Decodable { var ip: String?; var port: Int?; var rtcpPort: Int?; var srtpParameters: SrtpParameters?; var dtlsParameters: DtlsParameters? }
            let t = try transport(p)
            let params = try p.decode(Params.self)
            if let w = t as? WebRtcTransport {
                guard let dtls = params.dtlsParameters else { throw SFUError.invalidArgument("missing params.dtlsParameters") }
                try w.connect(dtlsParameters: dtls)
                return Self.ok
            }
            if let pipe = t as? PipeTransport {
                guard let ip = params.ip, let port = params.port else { throw SFUError.invalidArgument("missing params.ip or params.port") }
                try pipe.connect(ip: ip, port: port, srtpParameters: params.srtpParameters)
                return .object(["tuple": pipe.tuple.map { .encoding($0) } ?? .null])
            }
            guard let plain = t as? PlainTransport else { throw SFUError.unsupported("connect parameters of this transport type") }
            try plain.connect(ip: params.ip, port: params.port, rtcpPort: params.rtcpPort, srtpParameters: params.srtpParameters)
            return .object(["tuple": .encoding(plain.tuple)])
        case "transport.close":
            try transport(p).close()
            return Self.ok
        case "transport.setMaxIncomingBitrate", "transport.setMaxOutgoingBitrate", "transport.setMinOutgoingBitrate":
            guard let number = p["bitrate"]?.numberValue, let bitrate = Int(exactly: number) else {
                throw SFUError.invalidArgument("missing or invalid params.bitrate")
            }
            let t = try transport(p)
            switch method {
            case "transport.setMaxIncomingBitrate": try t.setMaxIncomingBitrate(bitrate)
            case "transport.setMaxOutgoingBitrate": try t.setMaxOutgoingBitrate(bitrate)
            default: try t.setMinOutgoingBitrate(bitrate)
            }
            return Self.ok
        case "transport.dump":
            let t = try transport(p)
            if let plain = t as? PlainTransport { return .encoding(try plain.dump()) }
            if let direct = t as? DirectTransport { return .encoding(try direct.dump()) }
            if let webrtc = t as? WebRtcTransport { return .encoding(try webrtc.dump()) }
            if let pipe = t as? PipeTransport { return .encoding(try pipe.dump()) }
            return .object(["id": .string(t.id)])
        case "transport.getStats":
            return .encoding(try await transport(p).getStats())
        case "transport.produce":
            let options = try p.decode(ProducerOptions.self)
            let producer = try transport(p).produce(options)
            owned.insert(producer.id)
            return .object(["id": .string(producer.id), "kind": .string(producer.kind.rawValue), "type": .string(producer.type.rawValue), "paused": .bool(producer.paused), "rtpParameters": .encoding(producer.rtpParameters)])
        case "transport.consume":
            let options = try p.decode(ConsumerOptions.self)
            let c = try transport(p).consume(options)
            owned.insert(c.id)
            return .object([
                "id": .string(c.id), "producerId": .string(c.producerId), "kind": .string(c.kind.rawValue),
                "rtpParameters": .encoding(c.rtpParameters), "type": .string(c.type.rawValue),
                "paused": .bool(c.paused), "producerPaused": .bool(c.producerPaused),
            ])

        case "transport.produceData":
            let options = try p.decode(DataProducerOptions.self)
            let dp = try transport(p).produceData(options)
            owned.insert(dp.id)
            return .object(["id": .string(dp.id), "type": .string(dp.type), "label": .string(dp.label), "protocol": .string(dp.protocol), "sctpStreamParameters": dp.sctpStreamParameters.map { .encoding($0) } ?? .null])
        case "transport.consumeData":
            let options = try p.decode(DataConsumerOptions.self)
            let dc = try transport(p).consumeData(options)
            owned.insert(dc.id)
            return .object(["id": .string(dc.id), "dataProducerId": .string(dc.dataProducerId), "type": .string(dc.type), "label": .string(dc.label), "protocol": .string(dc.protocol), "paused": .bool(dc.paused), "dataProducerPaused": .bool(dc.dataProducerPaused), "sctpStreamParameters": dc.sctpStreamParameters.map { .encoding($0) } ?? .null])

        // Data producers and consumers
        case "dataProducer.send":
            let dp = try dataProducer(p)
            if let text = p["text"]?.stringValue {
                try dp.send(text: text)
            } else {
                let ppid = p["ppid"]?.numberValue.flatMap { UInt32(exactly: $0) }
                try dp.send(try base64(p, "message"), ppid: ppid)
            }
            return Self.ok
        case "dataProducer.close":
            try dataProducer(p).close()
            return Self.ok
        case "dataProducer.pause":
            try dataProducer(p).pause()
            return Self.ok
        case "dataProducer.resume":
            try dataProducer(p).resume()
            return Self.ok
        case "dataProducer.getStats":
            return .encoding(try dataProducer(p).getStats())
        case "dataConsumer.getBufferedAmount":
            return .object(["bufferedAmount": .number(Double(try dataConsumer(p).getBufferedAmount()))])
        case "dataConsumer.setBufferedAmountLowThreshold":
            guard let number = p["threshold"]?.numberValue, let threshold = Int(exactly: number) else {
                throw SFUError.invalidArgument("missing or invalid params.threshold")
            }
            try dataConsumer(p).setBufferedAmountLowThreshold(threshold)
            return Self.ok
        case "dataConsumer.getStats":
            return .encoding(try dataConsumer(p).getStats())
        case "rtpObserver.dump":
            return .encoding(try rtpObserver(p).dump())
        case "dataProducer.dump":
            return .encoding(try dataProducer(p).dump())
        case "dataConsumer.close":
            try dataConsumer(p).close()
            return Self.ok
        case "dataConsumer.pause":
            try dataConsumer(p).pause()
            return Self.ok
        case "dataConsumer.resume":
            try dataConsumer(p).resume()
            return Self.ok
        case "dataConsumer.dump":
            return .encoding(try dataConsumer(p).dump())

        // Producer
        case "producer.close":
            try producer(p).close()
            return Self.ok
        case "producer.pause":
            try producer(p).pause()
            return Self.ok
        case "producer.resume":
            try producer(p).resume()
            return Self.ok
        case "producer.send":
            try producer(p).send(rtpPacket: try base64(p, "rtpPacket"))
            return Self.ok
        case "producer.dump":
            return .encoding(try producer(p).dump())
        case "producer.getStats":
            return .encoding(try await producer(p).getStats())

        // Consumer
        case "consumer.close":
            try consumer(p).close()
            return Self.ok
        case "consumer.pause":
            try consumer(p).pause()
            return Self.ok
        case "consumer.resume":
            try consumer(p).resume()
            return Self.ok
        case "consumer.enableTraceEvent":
            try consumer(p).enableTraceEvent(types: try traceTypes(p))
            return Self.ok
        case "producer.enableTraceEvent":
            try producer(p).enableTraceEvent(types: try traceTypes(p))
            return Self.ok
        case "consumer.setPreferredLayers":
            guard let spatial = p["spatialLayer"]?.numberValue, let s = Int(exactly: spatial) else {
                throw SFUError.invalidArgument("missing or invalid params.spatialLayer")
            }
            let temporal = p["temporalLayer"]?.numberValue.flatMap { Int(exactly: $0) }
            try consumer(p).setPreferredLayers(ConsumerLayers(spatialLayer: s, temporalLayer: temporal))
            return Self.ok
        case "consumer.requestKeyFrame":
            try consumer(p).requestKeyFrame()
            return Self.ok
        case "consumer.setPriority":
            guard let priority = p["priority"]?.numberValue, let value = Int(exactly: priority) else {
                throw SFUError.invalidArgument("missing or invalid params.priority")
            }
            try consumer(p).setPriority(value)
            return Self.ok
        case "consumer.dump":
            return .encoding(try consumer(p).dump())
        case "consumer.getStats":
            return .encoding(try await consumer(p).getStats())

        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    private func plainTransportJSON(_ t: PlainTransport) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(t.id), "tuple": .encoding(t.tuple), "rtcpMux": .bool(t.rtcpMux), "comedia": .bool(t.comedia),
            "sctpParameters": t.sctpParameters.map { .encoding($0) } ?? .null, "sctpState": t.sctpState.map { .string($0) } ?? .null,
            "srtpParameters": t.srtpParameters.map { .encoding($0) } ?? .null,
        ]
        if let r = t.rtcpTuple { o["rtcpTuple"] = .encoding(r) }
        return .object(o)
    }
}
