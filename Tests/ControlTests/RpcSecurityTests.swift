import Testing
import RingSFUTestSupport
import Foundation
import Hummingbird
import HummingbirdWSClient
import Logging
@testable import RingSFU
@testable import RingSFUServer
@testable import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket client on a bare TCP socket, for what a well-behaved client
/// library will not do: never read, send invalid UTF-8 or binary frames,
/// present odd credentials.
final class RawWebSocket: @unchecked Sendable {
    let fd: Int32
    private(set) var status = 0
    private(set) var responseHeaders = ""
    private var pending: [UInt8] = []

    init?(port: Int, path: String = "/rpc", headers: [String] = [], receiveBuffer: Int32? = nil) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = SocketAddress(ip: "127.0.0.1", port: UInt16(port))!
        let rc = withUnsafePointer(to: &addr.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, addr.length) }
        }
        guard rc == 0 else { close(fd); return nil }
        let request = (["GET \(path) HTTP/1.1", "Host: 127.0.0.1:\(port)", "Upgrade: websocket", "Connection: Upgrade",
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"] + headers).joined(separator: "\r\n") + "\r\n\r\n"
        writeAll(Array(request.utf8))
        var head: [UInt8] = []
        while !(head.count >= 4 && Array(head.suffix(4)) == [13, 10, 13, 10]) {
            var b: UInt8 = 0
            guard recv(fd, &b, 1, 0) == 1 else { break }
            head.append(b)
        }
        responseHeaders = String(decoding: head, as: UTF8.self)
        let parts = responseHeaders.split(separator: " ")
        status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
    }

    deinit { close(fd) }

    func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// One masked frame (clients must mask).
    func send(opcode: UInt8, _ payload: [UInt8]) {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for i in (0..<8).reversed() { frame.append(UInt8((payload.count >> (8 * i)) & 0xFF)) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        writeAll(frame)
    }

    func sendText(_ text: String) { send(opcode: 1, Array(text.utf8)) }

    /// The next frame from the server: (opcode, payload), nil on timeout or EOF.
    func readFrame() -> (UInt8, [UInt8])? {
        func need(_ n: Int) -> Bool {
            while pending.count < n {
                var buf = [UInt8](repeating: 0, count: 65536)
                let got = recv(fd, &buf, buf.count, 0)
                if got <= 0 { return false }
                pending += buf[0..<got]
            }
            return true
        }
        guard need(2) else { return nil }
        let opcode = pending[0] & 0x0F
        var length = Int(pending[1] & 0x7F)
        var header = 2
        if length == 126 {
            guard need(4) else { return nil }
            length = Int(pending[2]) << 8 | Int(pending[3])
            header = 4
        } else if length == 127 {
            guard need(10) else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(pending[$1]) }
            header = 10
        }
        guard need(header + length) else { return nil }
        let payload = Array(pending[header..<(header + length)])
        pending.removeFirst(header + length)
        return (opcode, payload)
    }

    /// Reads until a text frame arrives and decodes it.
    func readJSON() -> JSONValue? {
        while let (opcode, payload) = readFrame() {
            if opcode == 1 { return try? JSONDecoder().decode(JSONValue.self, from: Data(payload)) }
            if opcode == 8 { return nil }
        }
        return nil
    }

    /// Reads until the server's close frame; its status code.
    func closeCode() -> Int? {
        while let (opcode, payload) = readFrame() {
            if opcode == 8 { return payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005 }
        }
        return nil
    }
}

/// Runs blocking socket work on its own thread: the server under test
/// shares this process's concurrency pool, which a blocked test would starve.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.start()
    }
}

/// The control API as a hostile or careless client meets it: tokens,
/// ownership between sessions, a client that never reads, JSON-RPC and
/// WebSocket edge cases.
@Suite("Control API security")
struct RpcSecurityTests {
    static let apiToken = "test-api-token-0123456789"
    static let adminToken = RpcTests.adminToken
    static let limits = ServerLimits(apiToken: apiToken, adminToken: adminToken)
    static let bearer = "Authorization: Bearer \(apiToken)"

    func client(_ port: Int, token: String = apiToken, maxFrameSize: Int = 1 << 22, _ body: @escaping @Sendable (RpcTests.Conversation) async throws -> Void) async throws {
        let config = WebSocketClientConfiguration(maxFrameSize: maxFrameSize, additionalHeaders: [.authorization: "Bearer \(token)"])
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/rpc", configuration: config, logger: Logger(label: "test")) { inbound, outbound, _ in
            try await body(RpcTests.Conversation(inbound: inbound, outbound: outbound))
        }
    }

    func json(_ s: String) -> JSONValue { try! JSONDecoder().decode(JSONValue.self, from: Data(s.utf8)) }

    @Test func connectionsNeedTheToken() async throws {
        let (_, port, server) = try await RpcTests().startServer(limits: Self.limits)
        defer { server.cancel() }
        let token = Self.apiToken, admin = Self.adminToken, bearer = Self.bearer
        // Refused: closed at once with 1008 and the reason, no session made.
        let refused: [@Sendable () -> RawWebSocket?] = [{ RawWebSocket(port: port) }, { RawWebSocket(port: port, headers: ["Authorization: Bearer wrong-token-0123456789"]) },
                                                        { RawWebSocket(port: port, path: "/rpc?token=\(token)x") }]
        for attempt in refused {
            let (code, answer) = await offPool { () -> (Int?, JSONValue?) in
                guard let ws = attempt() else { return (nil, nil) }
                ws.sendText(#"{"jsonrpc":"2.0","id":1,"method":"worker.list"}"#)
                return (ws.closeCode(), nil)
            }
            #expect(code == 1008 && answer == nil)
        }
        // Accepted: a request is answered.
        let accepted: [@Sendable () -> RawWebSocket?] = [{ RawWebSocket(port: port, headers: [bearer]) }, { RawWebSocket(port: port, path: "/rpc?token=\(token)") },
                                                         { RawWebSocket(port: port, headers: ["Authorization: Bearer \(admin)"]) }]
        for attempt in accepted {
            let answer = await offPool { () -> JSONValue? in
                guard let ws = attempt() else { return nil }
                ws.sendText(#"{"jsonrpc":"2.0","id":1,"method":"worker.list"}"#)
                return ws.readJSON()
            }
            #expect(answer?["result"] != nil)
        }
        // Browsers cannot set headers: the token as a subprotocol, answered "ringsfu".
        let browser = try #require(await offPool { RawWebSocket(port: port, headers: ["Sec-WebSocket-Protocol: ringsfu, ringsfu.token.\(token)"]) })
        #expect(browser.status == 101)
        #expect(browser.responseHeaders.lowercased().contains("sec-websocket-protocol: ringsfu\r\n"))
        #expect(await offPool { browser.sendText(#"{"jsonrpc":"2.0","id":1,"method":"worker.list"}"#); return browser.readJSON()?["result"] } != nil)
    }

    @Test func sessionsSeeOnlyTheirOwnEntities() async throws {
        let (_, port, server) = try await RpcTests().startServer(limits: Self.limits)
        defer { server.cancel() }
        let fixture = Fixture()
        // Session A creates a full graph and stays connected while B probes it.
        try await client(port) { a in
            let codecs = json(#"[{"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2}]"#)
            let router = try #require(try await a.call("worker.createRouter", .object(["mediaCodecs": codecs]))["result"])
            let routerId = try #require(router["id"]?.stringValue)
            let workerId = try #require(router["workerId"]?.stringValue)
            let plain = try await a.call("router.createPlainTransport", json(#"{"routerId":"\#(routerId)","listenInfo":{"protocol":"udp","ip":"127.0.0.1"},"comedia":true}"#))
            let transportId = try #require(plain["result"]?["id"]?.stringValue)
            let webrtc = try await a.call("router.createWebRtcTransport", json(#"{"routerId":"\#(routerId)","listenInfos":[{"protocol":"udp","ip":"127.0.0.1"}]}"#))
            let webrtcId = try #require(webrtc["result"]?["id"]?.stringValue)
            let produced = try await a.call("transport.produce", json(#"{"transportId":"\#(transportId)","kind":"audio","rtpParameters":{"codecs":[{"mimeType":"audio/opus","payloadType":111,"clockRate":48000,"channels":2}],"encodings":[{"ssrc":4242}]}}"#))
            let producerId = try #require(produced["result"]?["id"]?.stringValue)
            let consumed = try await a.call("transport.consume", .object(["transportId": .string(webrtcId), "producerId": .string(producerId), "rtpCapabilities": router["rtpCapabilities"]!]))
            let consumerId = try #require(consumed["result"]?["id"]?.stringValue)
            let srv = try await a.call("worker.createWebRtcServer", json(#"{"workerId":"\#(workerId)","listenInfos":[{"protocol":"udp","ip":"127.0.0.1","port":\#(RpcTests().freePort(in: 45000...49999))}]}"#))
            let serverId = try #require(srv["result"]?["id"]?.stringValue)
            let direct = try await a.call("router.createDirectTransport", .object(["routerId": .string(routerId)]))
            let directId = try #require(direct["result"]?["id"]?.stringValue)
            let dp = try await a.call("transport.produceData", .object(["transportId": .string(directId), "label": .string("x")]))
            let dataProducerId = try #require(dp["result"]?["id"]?.stringValue)
            let observer = try await a.call("router.createAudioLevelObserver", .object(["routerId": .string(routerId)]))
            let observerId = try #require(observer["result"]?["id"]?.stringValue)
            await fixture.set(["router": routerId, "transport": transportId, "webrtc": webrtcId, "producer": producerId, "consumer": consumerId,
                               "server": serverId, "dataProducer": dataProducerId, "observer": observerId, "worker": workerId])

            try await client(port) { b in
                let ids = await fixture.ids
                let mine = try #require(try await b.call("worker.createRouter", .object(["mediaCodecs": codecs]))["result"])
                let myRouter = try #require(mine["id"]?.stringValue)
                let myTransport = try #require(try await b.call("router.createPlainTransport", json(#"{"routerId":"\#(myRouter)","listenInfo":{"protocol":"udp","ip":"127.0.0.1"}}"#))["result"]?["id"]?.stringValue)
                // Every method with one of A's ids answers as for an id nobody has.
                let probes: [(String, String, String)] = [
                    ("router.dump", "routerId", ids["router"]!), ("router.close", "routerId", ids["router"]!),
                    ("router.getRtpCapabilities", "routerId", ids["router"]!),
                    ("transport.dump", "transportId", ids["transport"]!), ("transport.getStats", "transportId", ids["transport"]!),
                    ("transport.close", "transportId", ids["transport"]!), ("transport.restartIce", "transportId", ids["webrtc"]!),
                    ("transport.connect", "transportId", ids["webrtc"]!), ("transport.setMaxIncomingBitrate", "transportId", ids["transport"]!),
                    ("producer.dump", "producerId", ids["producer"]!), ("producer.pause", "producerId", ids["producer"]!),
                    ("producer.close", "producerId", ids["producer"]!), ("producer.getStats", "producerId", ids["producer"]!),
                    ("consumer.dump", "consumerId", ids["consumer"]!), ("consumer.close", "consumerId", ids["consumer"]!),
                    ("consumer.pause", "consumerId", ids["consumer"]!), ("consumer.requestKeyFrame", "consumerId", ids["consumer"]!),
                    ("webRtcServer.dump", "webRtcServerId", ids["server"]!), ("webRtcServer.close", "webRtcServerId", ids["server"]!),
                    ("dataProducer.dump", "dataProducerId", ids["dataProducer"]!), ("dataProducer.close", "dataProducerId", ids["dataProducer"]!),
                    ("rtpObserver.dump", "rtpObserverId", ids["observer"]!), ("rtpObserver.close", "rtpObserverId", ids["observer"]!),
                ]
                for (method, key, theirs) in probes {
                    let unknown = UUID().uuidString.lowercased()
                    let extra: [String: JSONValue] = ["dtlsParameters": json(#"{"role":"client","fingerprints":[{"algorithm":"sha-256","value":"AA"}]}"#), "bitrate": .number(100_000)]
                    let onTheirs = try await b.call(method, .object(extra.merging([key: .string(theirs)]) { a, _ in a }))
                    let onUnknown = try await b.call(method, .object(extra.merging([key: .string(unknown)]) { a, _ in a }))
                    #expect(onTheirs["error"] != nil, "\(method) acted on another session's entity")
                    #expect(onTheirs["error"]?["message"]?.stringValue?.replacingOccurrences(of: theirs, with: "X")
                            == onUnknown["error"]?["message"]?.stringValue?.replacingOccurrences(of: unknown, with: "X"), "\(method)")
                }
                // Ids inside parameters too: consuming A's producer, using A's
                // WebRTC server, piping into A's router.
                let consume = try await b.call("transport.consume", .object(["transportId": .string(myTransport), "producerId": .string(ids["producer"]!), "rtpCapabilities": mine["rtpCapabilities"]!]))
                #expect(consume["error"]?["message"]?.stringValue?.contains("not found") == true)
                let onServer = try await b.call("router.createWebRtcTransport", .object(["routerId": .string(myRouter), "webRtcServerId": .string(ids["server"]!)]))
                #expect(onServer["error"]?["message"]?.stringValue == "unknown webRtcServerId \"\(ids["server"]!)\"")
                let pipe = try await b.call("router.pipeToRouter", .object(["routerId": .string(myRouter), "targetRouterId": .string(ids["router"]!), "producerId": .string("x")]))
                #expect(pipe["error"]?["message"]?.stringValue == "unknown routerId \"\(ids["router"]!)\"")
                // Dumps list only B's own; worker-wide operations are the admin's.
                let dump = try await b.call("worker.dump", .object(["workerId": .string(ids["worker"]!)]))
                #expect(dump["result"]?["routerIds"].map { "\($0)" }?.contains(ids["router"]!) == false)
                #expect(try await b.call("worker.updateSettings", json(#"{"logLevel":"debug"}"#))["error"]?["data"]?["type"]?.stringValue == "UnsupportedError")
                #expect(try await b.call("worker.getResourceUsage", .object([:]))["error"]?["data"]?["type"]?.stringValue == "UnsupportedError")
            }
            // A's entities all survived B.
            #expect(try await a.call("producer.dump", .object(["producerId": .string(producerId)]))["result"] != nil)
            #expect(try await a.call("consumer.dump", .object(["consumerId": .string(consumerId)]))["result"] != nil)
            #expect(try await a.call("webRtcServer.dump", .object(["webRtcServerId": .string(serverId)]))["result"] != nil)
            // The admin sees and may act on everything.
            try await client(port, token: Self.adminToken) { admin in
                #expect(try await admin.call("router.dump", .object(["routerId": .string(routerId)]))["result"] != nil)
                #expect(try await admin.call("worker.getResourceUsage", .object([:]))["result"] != nil)
                let dump = try await admin.call("worker.dump", .object(["workerId": .string(workerId)]))
                #expect(dump["result"]?["routerIds"].map { "\($0)" }?.contains(routerId) == true)
            }
        }
    }

    actor Fixture {
        var ids: [String: String] = [:]
        func set(_ v: [String: String]) { ids = v }
    }

    /// A client that sends requests and never reads is cut off once its
    /// queue passes the limit (close 1008) and its entities are closed; a
    /// second client keeps being answered.
    @Test func aClientThatNeverReadsIsCutOff() async throws {
        var limits = Self.limits
        limits.maxQueuedBytes = 256 << 10
        let (pool, port, server) = try await RpcTests().startServer(limits: limits)
        defer { server.cancel() }
        let bearer = Self.bearer
        let flooder = try #require(await offPool { RawWebSocket(port: port, headers: [bearer], receiveBuffer: 4096) })
        #expect(flooder.status == 101)
        let routerId = try #require(await offPool { () -> String? in
            flooder.sendText(#"{"jsonrpc":"2.0","id":1,"method":"worker.createRouter","params":{"mediaCodecs":[{"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2},{"kind":"video","mimeType":"video/VP8","clockRate":90000}]}}"#)
            return flooder.readJSON()?["result"]?["id"]?.stringValue
        })
        #expect(await pool.router(id: routerId) != nil)
        // ~5 KB responses, never read.
        let request = #"{"jsonrpc":"2.0","id":2,"method":"router.getRtpCapabilities","params":{"routerId":"\#(routerId)"}}"#
        await offPool { for _ in 0..<3000 { flooder.sendText(request) } }
        // (The server's socket buffers take a few MB before its queue grows;
        // on a loaded machine the 3000 requests take a while to answer.)
        var cut = false
        for _ in 0..<3000 {
            if await pool.router(id: routerId) == nil { cut = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(cut, "the flooding session was not ended")
        // Another client is served meanwhile and after.
        try await client(port) { c in
            let answer = try await c.call("worker.list", .object([:]))
            #expect(answer["result"] != nil)
        }
        // The flooder, once it reads, finds the reason.
        #expect(await offPool { flooder.closeCode() } == 1008)
    }

    /// One that never reads at all is not kept: its connection is dropped
    /// soon after the cut, though its writes can never drain.
    @Test func aClientThatNeverReadsIsDisconnected() async throws {
        var limits = Self.limits
        limits.maxQueuedBytes = 256 << 10
        let connections = Connections()
        let pool = await WorkerPool()
        try await pool.start(count: 1, settings: WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 16, maxProducers: 16, maxConsumers: 16))
        let port = RpcTests().freePort()
        let app = try ServerApp.build(host: "127.0.0.1", port: port, pool: pool, logLevel: .warning, limits: limits, connections: connections)
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        try await Task.sleep(for: .milliseconds(300))
        let bearer = Self.bearer
        let flooder = try #require(await offPool { RawWebSocket(port: port, headers: [bearer], receiveBuffer: 4096) })
        // (The connection registers once its handler starts, just after the upgrade.)
        for _ in 0..<100 where await connections.count == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await connections.count == 1)
        let routerId = try #require(await offPool { () -> String? in
            flooder.sendText(#"{"jsonrpc":"2.0","id":1,"method":"worker.createRouter","params":{"mediaCodecs":[{"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2},{"kind":"video","mimeType":"video/VP8","clockRate":90000}]}}"#)
            return flooder.readJSON()?["result"]?["id"]?.stringValue
        })
        // From here on it never reads; ~5 KB answers pile up.
        let request = #"{"jsonrpc":"2.0","id":2,"method":"router.getRtpCapabilities","params":{"routerId":"\#(routerId)"}}"#
        let sender = Task.detached { for _ in 0..<5000 { flooder.sendText(request) } }
        var gone = false
        for _ in 0..<3000 {
            if await connections.count == 0 { gone = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(gone, "the never-reading client's connection is still open")
        sender.cancel()
    }

    @Test func webRtcServersCloseWithTheirSession() async throws {
        let (pool, port, server) = try await RpcTests().startServer(limits: Self.limits)
        defer { server.cancel() }
        // 40 sessions (more than the two workers' 16 servers each) create one and leave.
        for _ in 0..<40 {
            try await client(port) { c in
                let r = try await c.call("worker.createWebRtcServer", json(#"{"listenInfos":[{"protocol":"udp","ip":"127.0.0.1"}]}"#))
                #expect(r["result"]?["id"] != nil, "\(r)")
            }
        }
        @RingSFUActor func counts() -> [Int] { pool.workers.map { $0.webRtcServers.count } }
        for _ in 0..<100 where await counts().reduce(0, +) > 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await counts() == [0, 0])
        try await client(port) { c in
            let r = try await c.call("worker.createWebRtcServer", json(#"{"listenInfos":[{"protocol":"udp","ip":"127.0.0.1"}]}"#))
            #expect(r["result"]?["id"] != nil)
        }
    }

    @Test func jsonRpcAndWebSocketEdgeCases() async throws {
        let (_, port, server) = try await RpcTests().startServer(limits: Self.limits)
        defer { server.cancel() }
        let bearer = Self.bearer
        let ws = try #require(await offPool { RawWebSocket(port: port, headers: [bearer]) })
        func ask(_ text: String) async -> JSONValue? { await offPool { ws.sendText(text); return ws.readJSON() } }
        // Integer ids round-trip exactly up to 2^53 - 1 ...
        let text = await offPool { () -> String in
            ws.sendText(#"{"jsonrpc":"2.0","id":9007199254740991,"method":"worker.list"}"#)
            while let (opcode, payload) = ws.readFrame() { if opcode == 1 { return String(decoding: payload, as: UTF8.self) } }
            return ""
        }
        #expect(text.contains(#""id":9007199254740991"#), "\(text)")
        // ... beyond that, and non-scalar ids, are refused.
        for id in ["18446744073709551616", "1.5", #"{"a":1}"#, "[1]", "true"] {
            let r = await ask(#"{"jsonrpc":"2.0","id":\#(id),"method":"worker.list"}"#)
            #expect(r?["error"]?["code"]?.numberValue == -32600 && r?["id"] == .null, "id \(id): \(String(describing: r))")
        }
        // Batches are answered as batches; notifications in them are not answered.
        let batch = await ask(#"[{"jsonrpc":"2.0","id":1,"method":"worker.list"},{"jsonrpc":"2.0","method":"worker.list"},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#)
        if case .array(let answers)? = batch {
            #expect(answers.count == 2 && answers[0]["id"] == .number(1) && answers[1]["error"]?["code"]?.numberValue == -32601)
        } else { Issue.record("batch answer: \(String(describing: batch))") }
        #expect(await ask("[]")?["error"]?["code"]?.numberValue == -32600)
        // Parameters of the wrong type are named.
        let badWorker = await ask(#"{"jsonrpc":"2.0","id":3,"method":"worker.createRouter","params":{"workerId":5}}"#)
        #expect(badWorker?["error"]?["message"]?.stringValue?.contains("workerId") == true)
        #expect(await ask(#"{"jsonrpc":"2.0","id":4,"method":"worker.list","params":[1]}"#)?["error"]?["code"]?.numberValue == -32602)
        // Media ports only from the worker's range (40000-49999 here), never privileged.
        let router = await ask(#"{"jsonrpc":"2.0","id":6,"method":"worker.createRouter","params":{}}"#)?["result"]?["id"]?.stringValue ?? ""
        for (field, value) in [("port", "80"), ("port", "50001"), ("portRange", #"{"min":1000,"max":41000}"#)] {
            let r = await ask(#"{"jsonrpc":"2.0","id":7,"method":"router.createPlainTransport","params":{"routerId":"\#(router)","listenInfo":{"protocol":"udp","ip":"127.0.0.1","\#(field)":\#(value)}}}"#)
            #expect(r?["error"]?["message"]?.stringValue?.contains("params.listenInfo.\(field)") == true, "\(String(describing: r))")
        }
        let inRange = await ask(#"{"jsonrpc":"2.0","id":8,"method":"router.createPlainTransport","params":{"routerId":"\#(router)","listenInfo":{"protocol":"udp","ip":"127.0.0.1","portRange":{"min":46000,"max":46999}}}}"#)
        #expect(inRange?["result"]?["id"] != nil, "\(String(describing: inRange))")
        // Binary messages get a clear error, not silence.
        let binary = await offPool { ws.send(opcode: 2, Array(#"{"jsonrpc":"2.0","id":5,"method":"worker.list"}"#.utf8)); return ws.readJSON() }
        #expect(binary?["error"]?["message"]?.stringValue?.contains("binary") == true)
        // Invalid UTF-8 in a text message closes with 1007 (RFC 6455).
        let invalid = await offPool { () -> String in
            ws.send(opcode: 1, [0x7B, 0xFF, 0xFE, 0x7D])
            var seen = ""
            while let (opcode, payload) = ws.readFrame() {
                seen += "[\(opcode) \(payload.prefix(2))]"
                if opcode == 8 { return seen + " close \(payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005)" }
            }
            return seen + " eof"
        }
        #expect(invalid.hasSuffix("close 1007"), "\(invalid)")
    }

    /// A message larger than one 16 KiB frame (a 1 MiB data message) is
    /// accepted up to the configured message size.
    @Test func largeMessagesUpToTheLimit() async throws {
        let (_, port, server) = try await RpcTests().startServer(limits: Self.limits)
        defer { server.cancel() }
        try await client(port) { c in
            let router = try #require(try await c.call("worker.createRouter", .object(["mediaCodecs": .array([])]))["result"]?["id"]?.stringValue)
            let direct = try #require(try await c.call("router.createDirectTransport", .object(["routerId": .string(router), "maxMessageSize": .number(Double(2 << 20))]))["result"]?["id"]?.stringValue)
            let dp = try #require(try await c.call("transport.produceData", .object(["transportId": .string(direct)]))["result"]?["id"]?.stringValue)
            let message = Data((0..<(1 << 20)).map { UInt8($0 % 251) }).base64EncodedString()
            let sent = try await c.call("dataProducer.send", .object(["dataProducerId": .string(dp), "message": .string(message)]))
            #expect(sent["result"] != nil, "\(sent)")
            let stats = try await c.call("dataProducer.getStats", .object(["dataProducerId": .string(dp)]))
            #expect(stats["result"].map { "\($0)" }?.contains("1048576") == true, "\(stats)")
        }
    }
}
