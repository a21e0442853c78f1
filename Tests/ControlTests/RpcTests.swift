import Testing
import RingSFUTestSupport
import Foundation
import Hummingbird
import HummingbirdWSClient
import Logging
@testable import RingSFU
@testable import RingSFUServer
@testable import RingSFUForwarder

/// The JSON-RPC server end to end: a real HTTP server, a real WebSocket
/// client, real UDP media on loopback.
@Suite("JSON-RPC over WebSocket")
struct RpcTests {
    /// Reads responses and notifications of one connection.
    final class Conversation {
        var iterator: WebSocketInboundMessageStream.AsyncIterator
        let outbound: WebSocketOutboundWriter
        var nextId = 1
        var notifications: [JSONValue] = []

        init(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) {
            iterator = inbound.messages(maxSize: 1 << 22).makeAsyncIterator()
            self.outbound = outbound
        }

        func receive() async throws -> JSONValue {
            guard let m = try await iterator.next(), case .text(let t) = m else { throw CancellationError() }
            return try JSONDecoder().decode(JSONValue.self, from: Data(t.utf8))
        }

        /// Sends a request and returns its response; notifications that
        /// arrive first are kept.
        func call(_ method: String, _ params: JSONValue) async throws -> JSONValue {
            let id = nextId
            nextId += 1
            let req = JSONValue.object(["jsonrpc": .string("2.0"), "id": .number(Double(id)), "method": .string(method), "params": params])
            try await outbound.write(.text(String(data: try JSONEncoder().encode(req), encoding: .utf8)!))
            while true {
                let msg = try await receive()
                if msg["id"]?.numberValue == Double(id) { return msg }
                notifications.append(msg)
            }
        }

        func raw(_ text: String) async throws -> JSONValue {
            try await outbound.write(.text(text))
            return try await receive()
        }

        func waitNotification(_ method: String) async throws -> JSONValue {
            if let i = notifications.firstIndex(where: { $0["method"]?.stringValue == method }) { return notifications.remove(at: i) }
            while true {
                let msg = try await receive()
                if msg["method"]?.stringValue == method { return msg }
                notifications.append(msg)
            }
        }
    }

    func json(_ s: String) -> JSONValue { try! JSONDecoder().decode(JSONValue.self, from: Data(s.utf8)) }

    func freePort(in range: ClosedRange<UInt16> = 50000...59999) -> Int {
        let b = try! UdpSocket.bind(ip: "127.0.0.1", port: nil, range: range)
        close(b.fd)
        return Int(b.local.port)
    }

    static let adminToken = "test-admin-token-0123456789"
    /// Connecting as the admin (worker-wide methods).
    static let asAdmin = WebSocketClientConfiguration(maxFrameSize: 1 << 22, additionalHeaders: [.authorization: "Bearer \(adminToken)"])

    /// A real server with two workers on a free port, listening when this returns.
    func startServer(limits: ServerLimits = ServerLimits(adminToken: RpcTests.adminToken)) async throws -> (WorkerPool, Int, Task<Void, any Error>) {
        let pool = await WorkerPool()
        try await pool.start(count: 2, settings: WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 64, maxProducers: 64, maxConsumers: 256))
        let port = freePort()
        let app = try ServerApp.build(host: "127.0.0.1", port: port, pool: pool, logLevel: .warning, limits: limits)
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        try await Task.sleep(for: .milliseconds(300))
        return (pool, port, server)
    }

    @Test func fullSessionAndErrors() async throws {
        let (pool, port, server) = try await startServer()
        defer { server.cancel() }
        let sink = TestSocket()
        let sender = TestSocket()
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/rpc", configuration: Self.asAdmin, logger: Logger(label: "test")) { inbound, outbound, _ in
            let rpc = Conversation(inbound: inbound, outbound: outbound)
            let codecs = json(#"[{"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2},{"kind":"video","mimeType":"video/VP8","clockRate":90000}]"#)
            let router = try await rpc.call("worker.createRouter", .object(["mediaCodecs": codecs]))
            let routerId = try #require(router["result"]?["id"]?.stringValue)
            #expect(router["result"]?["rtpCapabilities"]?["codecs"] != nil)
            let caps = router["result"]!["rtpCapabilities"]!

            let t1 = try await rpc.call("router.createPlainTransport", json(#"{"routerId":"\#(routerId)","listenInfo":{"protocol":"udp","ip":"127.0.0.1"},"comedia":true,"rtcpMux":true}"#))
            let t1Id = try #require(t1["result"]?["id"]?.stringValue)
            let t1Port = try #require(t1["result"]?["tuple"]?["localPort"]?.numberValue)
            #expect(t1["result"]?["tuple"]?["localAddress"]?.stringValue == "127.0.0.1")
            #expect(t1["result"]?["tuple"]?["protocol"]?.stringValue == "udp")
            let t2 = try await rpc.call("router.createPlainTransport", json(#"{"routerId":"\#(routerId)","listenInfo":{"protocol":"udp","ip":"127.0.0.1"},"comedia":false,"rtcpMux":true}"#))
            let t2Id = try #require(t2["result"]?["id"]?.stringValue)
            let connected = try await rpc.call("transport.connect", json(#"{"transportId":"\#(t2Id)","ip":"127.0.0.1","port":\#(sink.port)}"#))
            #expect(connected["result"] != nil)

            let produced = try await rpc.call("transport.produce", json(#"{"transportId":"\#(t1Id)","kind":"audio","rtpParameters":{"codecs":[{"mimeType":"audio/opus","payloadType":111,"clockRate":48000,"channels":2}],"encodings":[{"ssrc":7777}]}}"#))
            let producerId = try #require(produced["result"]?["id"]?.stringValue)
            #expect(produced["result"]?["type"]?.stringValue == "simple")

            let can = try await rpc.call("router.canConsume", .object(["routerId": .string(routerId), "producerId": .string(producerId), "rtpCapabilities": caps]))
            #expect(can["result"]?["canConsume"]?.boolValue == true)

            let consumed = try await rpc.call("transport.consume", .object(["transportId": .string(t2Id), "producerId": .string(producerId), "rtpCapabilities": caps, "paused": .bool(false)]))
            let c = try #require(consumed["result"])
            let consumerId = try #require(c["id"]?.stringValue)
            #expect(c["producerId"]?.stringValue == producerId)
            #expect(c["kind"]?.stringValue == "audio")
            #expect(c["type"]?.stringValue == "simple")
            #expect(c["paused"]?.boolValue == false)
            #expect(c["producerPaused"]?.boolValue == false)
            let outSsrc = try #require(c["rtpParameters"]?["encodings"].flatMap { if case .array(let a) = $0 { a.first } else { nil } }?["ssrc"]?.numberValue)

            // Media flows.
            for i in 0..<5 { sender.send(makeRtp(pt: 111, seq: UInt16(i), ssrc: 7777), to: UInt16(t1Port)) }
            let got = await sink.receiveAll(5)
            #expect(got.count == 5)
            if let first = got.first {
                let h = try first.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
                #expect(Double(h.ssrc) == outSsrc)
            }
            // The comedia tuple is announced.
            let tuple = try await rpc.waitNotification("transport.tuple")
            #expect(tuple["params"]?["transportId"]?.stringValue == t1Id)

            let stats = try await rpc.call("consumer.getStats", .object(["consumerId": .string(consumerId)]))
            if case .array(let entries) = stats["result"] ?? .null {
                #expect(entries.first?["type"]?.stringValue == "outbound-rtp")
                #expect(entries.first?["packetCount"]?.numberValue == 5)
            } else { Issue.record("getStats did not return an array") }
            let dump = try await rpc.call("producer.dump", .object(["producerId": .string(producerId)]))
            #expect(dump["result"]?["consumerIds"] == .array([.string(consumerId)]))
            // Bitrate limits, reported by the transport's stats.
            let limited = try await rpc.call("transport.setMaxIncomingBitrate", json(#"{"transportId":"\#(t1Id)","bitrate":1500000}"#))
            #expect(limited["result"] != nil)
            let badLimit = try await rpc.call("transport.setMaxOutgoingBitrate", json(#"{"transportId":"\#(t2Id)","bitrate":1000}"#))
            #expect(badLimit["error"]?["data"]?["type"]?.stringValue == "TypeError")
            let tStats = try await rpc.call("transport.getStats", .object(["transportId": .string(t1Id)]))
            if case .array(let entries) = tStats["result"] ?? .null {
                #expect(entries.first?["maxIncomingBitrate"]?.numberValue == 1_500_000)
            } else { Issue.record("transport.getStats did not return an array") }

            // Closing the producer notifies the consumer.
            let closed = try await rpc.call("producer.close", .object(["producerId": .string(producerId)]))
            #expect(closed["result"] != nil)
            let note = try await rpc.waitNotification("consumer.producerclose")
            #expect(note["params"]?["consumerId"]?.stringValue == consumerId)

            // Errors carry mediasoup's types.
            let stale = try await rpc.call("consumer.pause", .object(["consumerId": .string(consumerId)]))
            #expect(stale["error"]?["data"]?["type"]?.stringValue == "InvalidStateError")
            let badCodec = try await rpc.call("worker.createRouter", json(#"{"mediaCodecs":[{"kind":"video","mimeType":"video/FOO","clockRate":90000}]}"#))
            #expect(badCodec["error"]?["data"]?["type"]?.stringValue == "UnsupportedError")
            let badArg = try await rpc.call("router.createPlainTransport", json(#"{"routerId":"\#(routerId)","listenInfo":{"protocol":"udp"}}"#))
            #expect(badArg["error"]?["data"]?["type"]?.stringValue == "TypeError")
            #expect(badArg["error"]?["message"]?.stringValue?.contains("listenInfo.ip") == true)
            let badMime = try await rpc.call("transport.produce", json(#"{"transportId":"\#(t1Id)","kind":"audio","rtpParameters":{"codecs":[{"mimeType":"opus","payloadType":111,"clockRate":48000}],"encodings":[{"ssrc":1}]}}"#))
            #expect(badMime["error"]?["data"]?["type"]?.stringValue == "TypeError")
            let usage = try await rpc.call("worker.getResourceUsage", .object([:]))
            #expect((usage["result"]?["ru_maxrss"]?.numberValue ?? 0) > 0)
            let level = try await rpc.call("worker.updateSettings", json(#"{"logLevel":"none"}"#))
            #expect(level["result"] != nil)
            let badLevel = try await rpc.call("worker.updateSettings", json(#"{"logLevel":"loud"}"#))
            #expect(badLevel["error"]?["message"]?.stringValue?.contains("logLevel") == true)
            let unknown = try await rpc.call("nope.nothing", .object([:]))
            #expect(unknown["error"]?["code"]?.numberValue == -32601)
            let garbage = try await rpc.raw("{not json")
            #expect(garbage["error"]?["code"]?.numberValue == -32700)

            // Router close: the other transport hears routerclose.
            _ = try await rpc.call("router.close", .object(["routerId": .string(routerId)]))
            let rc = try await rpc.waitNotification("transport.routerclose")
            #expect([t1Id, t2Id].contains(rc["params"]?["transportId"]?.stringValue ?? ""))
            try await outbound.close(.normalClosure, reason: nil)
        }
        await pool.closeAll()
    }

    /// The entity-graph methods: direct transports with data, pipeToRouter
    /// across the two workers, observers, and their notifications.
    @Test func graphMethods() async throws {
        let (pool, port, server) = try await startServer()
        defer { server.cancel() }
        let workers = await pool.workers.map(\.id)
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/rpc", logger: Logger(label: "test")) { inbound, outbound, _ in
            let rpc = Conversation(inbound: inbound, outbound: outbound)
            let codecs = json(#"[{"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2}]"#)
            let r1 = try await rpc.call("worker.createRouter", .object(["workerId": .string(workers[0]), "mediaCodecs": codecs]))["result"]?["id"]?.stringValue ?? ""
            let r2 = try await rpc.call("worker.createRouter", .object(["workerId": .string(workers[1]), "mediaCodecs": codecs]))["result"]?["id"]?.stringValue ?? ""
            // Data between two direct transports.
            let a = try await rpc.call("router.createDirectTransport", .object(["routerId": .string(r1)]))["result"]?["id"]?.stringValue ?? ""
            let b = try await rpc.call("router.createDirectTransport", .object(["routerId": .string(r1)]))["result"]?["id"]?.stringValue ?? ""
            let dp = try await rpc.call("transport.produceData", .object(["transportId": .string(a), "label": .string("chat")]))
            let dpId = try #require(dp["result"]?["id"]?.stringValue)
            #expect(dp["result"]?["type"]?.stringValue == "direct")
            let dc = try await rpc.call("transport.consumeData", .object(["transportId": .string(b), "dataProducerId": .string(dpId)]))
            let dcId = try #require(dc["result"]?["id"]?.stringValue)
            _ = try await rpc.call("dataProducer.send", .object(["dataProducerId": .string(dpId), "text": .string("hi")]))
            let msg = try await rpc.waitNotification("dataconsumer.message")
            #expect(msg["params"]?["dataConsumerId"]?.stringValue == dcId)
            #expect(msg["params"]?["message"]?.stringValue == "aGk=")
            #expect(msg["params"]?["ppid"]?.numberValue == 51)
            // Buffered amounts are for SCTP data consumers only.
            let buffered = try await rpc.call("dataConsumer.getBufferedAmount", .object(["dataConsumerId": .string(dcId)]))
            #expect(buffered["error"]?["data"]?["type"]?.stringValue == "InvalidStateError")
            let badThreshold = try await rpc.call("dataConsumer.setBufferedAmountLowThreshold", .object(["dataConsumerId": .string(dcId), "threshold": .number(5)]))
            #expect(badThreshold["error"]?["data"]?["type"]?.stringValue == "InvalidStateError")
            // pipeToRouter across the workers.
            let t = try await rpc.call("router.createPlainTransport", json(#"{"routerId":"\#(r1)","listenInfo":{"protocol":"udp","ip":"127.0.0.1"},"comedia":true}"#))
            let tId = t["result"]?["id"]?.stringValue ?? ""
            let p = try await rpc.call("transport.produce", json(#"{"transportId":"\#(tId)","kind":"audio","rtpParameters":{"codecs":[{"mimeType":"audio/opus","payloadType":111,"clockRate":48000,"channels":2}],"encodings":[{"ssrc":5}]}}"#))
            let pId = p["result"]?["id"]?.stringValue ?? ""
            let piped = try await rpc.call("router.pipeToRouter", .object(["routerId": .string(r1), "producerId": .string(pId), "targetRouterId": .string(r2)]))
            #expect(piped["result"]?["pipeProducerId"]?.stringValue == pId)
            let again = try await rpc.call("router.pipeToRouter", .object(["routerId": .string(r1), "producerId": .string(pId), "targetRouterId": .string(r2)]))
            #expect(again["error"]?["data"]?["type"]?.stringValue == "InvalidStateError")
            let pipedData = try await rpc.call("router.pipeToRouter", .object(["routerId": .string(r1), "dataProducerId": .string(dpId), "targetRouterId": .string(r2)]))
            #expect(pipedData["result"]?["pipeDataProducerId"]?.stringValue == dpId)
            #expect(pipedData["result"]?["pipeDataConsumerId"]?.stringValue != nil)
            let both = try await rpc.call("router.pipeToRouter", .object(["routerId": .string(r1), "producerId": .string(pId), "dataProducerId": .string(dpId), "targetRouterId": .string(r2)]))
            #expect(both["error"]?["message"]?.stringValue == "just producerId or dataProducerId can be given")
            // Observers.
            let o = try await rpc.call("router.createAudioLevelObserver", .object(["routerId": .string(r1), "interval": .number(250)]))
            let oId = try #require(o["result"]?["id"]?.stringValue)
            let added = try await rpc.call("rtpObserver.addProducer", .object(["rtpObserverId": .string(oId), "producerId": .string(pId)]))
            #expect(added["result"] != nil)
            let bad = try await rpc.call("router.createAudioLevelObserver", .object(["routerId": .string(r1), "interval": .number(1)]))
            #expect(bad["error"]?["data"]?["type"]?.stringValue == "TypeError")
            // A WebRTC transport with mediasoup's field names.
            let w = try await rpc.call("router.createWebRtcTransport", json(#"{"routerId":"\#(r1)","listenInfos":[{"protocol":"udp","ip":"127.0.0.1"}]}"#))
            let wr = try #require(w["result"])
            #expect(wr["iceParameters"]?["usernameFragment"]?.stringValue?.count == 16)
            #expect(wr["iceParameters"]?["iceLite"]?.boolValue == true)
            #expect(wr["dtlsParameters"]?["role"]?.stringValue == "auto")
            if case .array(let candidates) = wr["iceCandidates"] ?? .null {
                #expect(candidates.first?["protocol"]?.stringValue == "udp" && candidates.first?["type"]?.stringValue == "host")
            } else { Issue.record("no iceCandidates") }
            let wId = wr["id"]?.stringValue ?? ""
            let badConnect = try await rpc.call("transport.connect", .object(["transportId": .string(wId)]))
            #expect(badConnect["error"]?["data"]?["type"]?.stringValue == "TypeError")
            let okConnect = try await rpc.call("transport.connect", json(#"{"transportId":"\#(wId)","dtlsParameters":{"role":"client","fingerprints":[{"algorithm":"sha-256","value":"AA:BB"}]}}"#))
            #expect(okConnect["result"] != nil)
            let restarted = try await rpc.call("transport.restartIce", .object(["transportId": .string(wId)]))
            #expect(restarted["result"]?["iceParameters"]?["password"]?.stringValue?.count == 32)
            // Closing the original producer reaches the pipe consumer.
            _ = try await rpc.call("producer.close", .object(["producerId": .string(pId)]))
            let note = try await rpc.waitNotification("consumer.producerclose")
            #expect(note["params"]?["consumerId"]?.stringValue == piped["result"]?["pipeConsumerId"]?.stringValue)
            try await outbound.close(.normalClosure, reason: nil)
        }
        await pool.closeAll()
    }
}
