import Foundation
import HummingbirdWSClient
import Logging
import RingSFU

/// Drives a running `ringsfu serve` over its JSON-RPC API: builds the same
/// room as the in-process run and reads the worker's counters remotely.
final class RemoteRoom {
    private var iterator: WebSocketInboundMessageStream.AsyncIterator
    private let outbound: WebSocketOutboundWriter
    private var nextId = 1
    private(set) var workerId = ""
    private(set) var ingestPort: UInt16 = 0

    init(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) {
        iterator = inbound.messages(maxSize: 1 << 24).makeAsyncIterator()
        self.outbound = outbound
    }

    struct RemoteError: Error, CustomStringConvertible {
        var description: String
    }

    func call(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        let id = nextId
        nextId += 1
        let req = JSONValue.object(["jsonrpc": .string("2.0"), "id": .number(Double(id)), "method": .string(method), "params": params])
        try await outbound.write(.text(String(decoding: try JSONEncoder().encode(req), as: UTF8.self)))
        while true {
            guard let m = try await iterator.next() else { throw RemoteError(description: "connection closed") }
            guard case .text(let text) = m else { continue }
            let msg = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            guard msg["id"]?.numberValue == Double(id) else { continue } // a notification
            if let error = msg["error"] { throw RemoteError(description: "\(method): \(error)") }
            return msg["result"] ?? .null
        }
    }

    func setUp(consumers n: Int, video: [UInt32], audio: [UInt32], sinkPort: UInt16) async throws {
        let codecs = JSONValue.encoding(Fanout.roomCodecs)
        let router = try await call("worker.createRouter", .object(["mediaCodecs": codecs]))
        guard let routerId = router["id"]?.stringValue, let workerId = router["workerId"]?.stringValue else {
            throw RemoteError(description: "unexpected createRouter result \(router)")
        }
        self.workerId = workerId
        let caps = router["rtpCapabilities"] ?? .null
        let listen: JSONValue = .object(["protocol": .string("udp"), "ip": .string("127.0.0.1")])
        let ingest = try await call("router.createPlainTransport", .object(["routerId": .string(routerId), "listenInfo": listen, "comedia": .bool(true)]))
        let ingestId = ingest["id"]?.stringValue ?? ""
        ingestPort = UInt16(ingest["tuple"]?["localPort"]?.numberValue ?? 0)
        var producerIds: [String] = []
        for ssrc in video {
            let params = JSONValue.encoding(RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000)], encodings: [RtpEncodingParameters(ssrc: ssrc)], rtcp: RtcpParameters(cname: "perf")))
            let p = try await call("transport.produce", .object(["transportId": .string(ingestId), "kind": .string("video"), "rtpParameters": params]))
            producerIds.append(p["id"]?.stringValue ?? "")
        }
        for ssrc in audio {
            let params = JSONValue.encoding(RtpParameters(codecs: [RtpCodecParameters(mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2)], encodings: [RtpEncodingParameters(ssrc: ssrc)], rtcp: RtcpParameters(cname: "perf")))
            let p = try await call("transport.produce", .object(["transportId": .string(ingestId), "kind": .string("audio"), "rtpParameters": params]))
            producerIds.append(p["id"]?.stringValue ?? "")
        }
        for _ in 0..<n {
            let t = try await call("router.createPlainTransport", .object(["routerId": .string(routerId), "listenInfo": listen]))
            let tid = t["id"]?.stringValue ?? ""
            _ = try await call("transport.connect", .object(["transportId": .string(tid), "ip": .string("127.0.0.1"), "port": .number(Double(sinkPort))]))
            for pid in producerIds {
                _ = try await call("transport.consume", .object(["transportId": .string(tid), "producerId": .string(pid), "rtpCapabilities": caps]))
            }
        }
    }

    /// Packets and bytes sent by a worker so far and its forwarder thread's CPU seconds.
    func figures(workerId: String) async throws -> (packets: UInt64, bytes: UInt64, cpu: Double) {
        let u = try await call("worker.getResourceUsage", .object(["workerId": .string(workerId)]))
        return (UInt64(u["packetsOut"]?.numberValue ?? 0), UInt64(u["bytesOut"]?.numberValue ?? 0), u["forwarderCpuSeconds"]?.numberValue ?? 0)
    }

    /// Packets sent by the worker (the room's, by default) so far and its
    /// forwarder thread's CPU seconds.
    func usage(workerId: String? = nil) async throws -> (UInt64, Double) {
        let f = try await figures(workerId: workerId ?? self.workerId)
        return (f.packets, f.cpu)
    }
}
