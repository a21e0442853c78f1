import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// Key frame requests end to end over real UDP: PLI/FIR from a consumer's
/// endpoint reach the producer's endpoint through the request state
/// (coalesced, retried once after 1 s, cleared by a key frame); a consumer
/// joining or resuming asks for one; `requestKeyFrame()`.
@Suite("Key frame requests") @RingSFUActor
struct KeyFrameRequestTests {
    /// Feedback found in an RTCP datagram: (format, ssrc asked for a key frame, FIR number).
    static func keyFrameRequests(_ bytes: [UInt8]) -> [(fmt: UInt8, ssrc: UInt32, seq: UInt8?)] {
        var out: [(UInt8, UInt32, UInt8?)] = []
        bytes.withUnsafeBytes { raw in
            try? Rtcp.forEach(raw.baseAddress!, count: raw.count) { v in
                guard v.type == RtcpType.psfb else { return }
                if v.count == RtcpFormat.pli, let s = try? Rtcp.feedbackSsrcs(v) { out.append((v.count, s.media, nil)) }
                if v.count == RtcpFormat.fir { try? Rtcp.forEachFirEntry(v) { out.append((v.count, $0, $1)) } }
            }
        }
        return out.map { (fmt: $0.0, ssrc: $0.1, seq: $0.2) }
    }

    /// The next key frame request the socket receives within `ms`, skipping other datagrams.
    func nextRequest(_ s: TestSocket, ms: Int) async -> (fmt: UInt8, ssrc: UInt32, seq: UInt8?)? {
        let deadline = Date().addingTimeInterval(Double(ms) / 1000)
        while Date() < deadline {
            await Task.yield()
            if let d = await s.receive(timeoutMs: 10), let first = Self.keyFrameRequests(d).first { return first }
        }
        return nil
    }

    struct Room {
        let worker: Worker
        let ingress: PlainTransport
        let producer: Producer
        let feeder: TestSocket
        let egress: PlainTransport
        let sink: TestSocket
        var seq: UInt16 = 0
    }

    func room(feedback: [RtcpFeedback]) async throws -> Room {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        var params = videoParams(ssrc: 5000)
        params.codecs[0].rtcpFeedback = feedback
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: params))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        await worker.sync()
        let feeder = TestSocket()
        feeder.acceptsRtcp = true
        return Room(worker: worker, ingress: ingress, producer: producer, feeder: feeder, egress: egress, sink: sink)
    }

    func sendFrame(_ r: inout Room, key: Bool) {
        r.feeder.send(makeRtp(pt: 96, seq: r.seq, ts: UInt32(r.seq) * 3000, ssrc: 5000, payload: vp8Payload(keyFrame: key)), to: UInt16(r.ingress.tuple.localPort))
        r.seq &+= 1
    }

    func feedback(_ r: Room, _ bytes: [UInt8]) {
        r.sink.send(bytes, to: UInt16(r.egress.tuple.localPort))
    }

    func pli(media: UInt32) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 12)
        _ = b.withUnsafeMutableBytes { RtcpWriter.pli($0.baseAddress!, capacity: 12, sender: 77, media: media) }
        return b
    }

    func fir(target: UInt32, seq: UInt8) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 20)
        _ = b.withUnsafeMutableBytes { RtcpWriter.fir($0.baseAddress!, capacity: 20, sender: 77, target: target, sequence: seq) }
        return b
    }

    @Test func pliIsForwardedCoalescedAndRetried() async throws {
        var r = try await room(feedback: [RtcpFeedback(type: "nack", parameter: "pli")])
        // The producer is running (delta frames only) when the consumer joins.
        for _ in 0..<3 { sendFrame(&r, key: false) }
        await r.worker.sync()
        let consumer = try r.egress.consume(ConsumerOptions(producerId: r.producer.id, rtpCapabilities: r.egress.router!.rtpCapabilities))
        let ssrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        let first = try #require(await nextRequest(r.feeder, ms: 500), "a joining consumer asks for a key frame")
        #expect(first.fmt == RtcpFormat.pli && first.ssrc == 5000)
        // More PLIs from the consumer's endpoint while one is outstanding: coalesced.
        for _ in 0..<3 { feedback(r, pli(media: ssrc)) }
        #expect(await nextRequest(r.feeder, ms: 400) == nil)
        // No key frame: one retry (after a second: KeyFrameRequesterTests
        // checks the timing on simulated time).
        let retry = try #require(await nextRequest(r.feeder, ms: 2000))
        #expect(retry.fmt == RtcpFormat.pli)
        // A key frame ends the request; the consumer starts with it.
        sendFrame(&r, key: true)
        #expect(await r.sink.receiveAll(1).count == 1)
        feedback(r, pli(media: ssrc))
        #expect(await nextRequest(r.feeder, ms: 500)?.ssrc == 5000)
        sendFrame(&r, key: true)
        _ = await r.sink.receiveAll(1)
        // The API asks too.
        try consumer.requestKeyFrame()
        #expect(await nextRequest(r.feeder, ms: 500)?.ssrc == 5000)
        // Feedback for an SSRC nobody consumes is ignored.
        sendFrame(&r, key: true)
        _ = await r.sink.receiveAll(1)
        feedback(r, pli(media: 0xDEAD))
        #expect(await nextRequest(r.feeder, ms: 300) == nil)
        let stats = try await consumer.getStats()
        #expect(stats[0].pliCount == 4, "three coalesced and one later PLI")
        let pstats = try await r.producer.getStats()
        #expect(pstats[0].pliCount == 4)
        r.worker.close()
    }

    @Test func firIsHonouredBySequenceNumberAndUsedTowardsFirOnlyProducers() async throws {
        var r = try await room(feedback: [RtcpFeedback(type: "ccm", parameter: "fir")])
        sendFrame(&r, key: false)
        await r.worker.sync()
        let consumer = try r.egress.consume(ConsumerOptions(producerId: r.producer.id, rtpCapabilities: r.egress.router!.rtpCapabilities))
        let ssrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        let first = try #require(await nextRequest(r.feeder, ms: 500))
        #expect(first.fmt == RtcpFormat.fir && first.ssrc == 5000 && first.seq == 1)
        sendFrame(&r, key: true)
        _ = await r.sink.receiveAll(1)
        // FIR #5 twice (a retransmission of one request), then #6.
        feedback(r, fir(target: ssrc, seq: 5))
        let second = try #require(await nextRequest(r.feeder, ms: 500))
        #expect(second.seq == 2, "our own request numbers increase")
        sendFrame(&r, key: true)
        _ = await r.sink.receiveAll(1)
        feedback(r, fir(target: ssrc, seq: 5))
        #expect(await nextRequest(r.feeder, ms: 300) == nil)
        feedback(r, fir(target: ssrc, seq: 6))
        #expect(await nextRequest(r.feeder, ms: 500)?.seq == 3)
        #expect(try await consumer.getStats()[0].firCount == 2)
        r.worker.close()
    }

    @Test func resumedConsumerAndDirectTransportProducer() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let direct = try router.createDirectTransport()
        let events = direct.events
        let producer = try direct.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 42)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(TestSocket().port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities, paused: true))
        try await Task.sleep(for: .milliseconds(100))
        try consumer.resume()
        await worker.sync()
        try await Task.sleep(for: .milliseconds(100))
        direct.close()
        var requests: [(fmt: UInt8, ssrc: UInt32, seq: UInt8?)] = []
        for e in await collect(events) { if case .rtcp(let bytes) = e { requests += Self.keyFrameRequests(bytes) } }
        // Paused at creation: no request; resumed: a PLI, to the application
        // (and its retry a second later if this test was slow to close).
        #expect(requests.count >= 1 && requests.count <= 2)
        #expect(requests.allSatisfy { $0.ssrc == 42 && $0.fmt == RtcpFormat.pli })
        worker.close()
    }
}
