import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// NACKs from a consumer's endpoint answered from the worker's packet store:
/// as RTX (RFC 4588) when the consumer negotiated it, as the original
/// packet otherwise; packets the consumer never got under its current
/// numbering, or no longer held, are not resent.
@Suite("Retransmission") @RingSFUActor
struct RetransmissionTests {
    func nack(media: UInt32, _ seqs: [UInt16]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 256)
        let n = b.withUnsafeMutableBytes { RtcpWriter.nack($0.baseAddress!, capacity: 256, sender: 9, media: media, count: seqs.count) { seqs[$0] } }
        return Array(b[0..<n])
    }

    func header(_ d: [UInt8]) throws -> RtpHeader {
        try d.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
    }

    @Test(arguments: [true, false])
    func nackedPacketsAreResent(rtx: Bool) async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 6000)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        var caps = router.rtpCapabilities
        if !rtx { caps.codecs = caps.codecs?.filter { !$0.mimeType.isRtxMime } }
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: caps))
        let ssrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        #expect((consumer.rtpParameters.encodings?.first?.rtx != nil) == rtx)
        await worker.sync()
        let feeder = TestSocket()
        var sent: [[UInt8]] = []
        for i in 0..<10 {
            let payload = vp8Payload(keyFrame: i == 0) + [UInt8(i)]
            let p = makeRtp(pt: 96, seq: UInt16(100 + i), ts: UInt32(i) * 3000, ssrc: 6000, payload: payload)
            sent.append(payload)
            feeder.send(p, to: UInt16(ingress.tuple.localPort))
        }
        let got = sink.receiveAll(10)
        #expect(got.count == 10)
        let seqs = try got.map { try header($0).sequenceNumber }
        // Lose #3 and #5 (as the endpoint sees them) and ask for them.
        sink.send(nack(media: ssrc, [seqs[3], seqs[5]]), to: UInt16(egress.tuple.localPort))
        let resent = sink.receiveAll(2)
        #expect(resent.count == 2)
        for (k, original) in [(0, 3), (1, 5)] {
            guard k < resent.count else { break }
            let h = try header(resent[k])
            let body = Array(resent[k][h.payloadOffset..<(h.payloadOffset + h.payloadLength)])
            if rtx {
                #expect(h.ssrc == consumer.rtpParameters.encodings?.first?.rtx?.ssrc)
                let rtxPt = consumer.rtpParameters.codecs.first { $0.mimeType.isRtxMime }?.payloadType
                #expect(Int(h.payloadType) == rtxPt)
                #expect(UInt16(body[0]) << 8 | UInt16(body[1]) == seqs[original], "OSN first")
                #expect(Array(body.dropFirst(2)) == sent[original])
            } else {
                #expect(h.ssrc == ssrc && h.sequenceNumber == seqs[original])
                #expect(body == sent[original])
            }
        }
        if rtx, resent.count == 2 {
            let a = try header(resent[0]).sequenceNumber, b = try header(resent[1]).sequenceNumber
            #expect(b == a &+ 1, "RTX has its own sequence")
        }
        // Never sent under this numbering: not resent.
        sink.send(nack(media: ssrc, [seqs[9] &+ 50]), to: UInt16(egress.tuple.localPort))
        #expect(sink.receive(timeoutMs: 200) == nil)
        let stats = try await consumer.getStats()
        #expect(stats[0].packetsRetransmitted == 2 && stats[0].nackCount == 2)
        worker.close()
    }

    /// A packet sent before a pause is not resent after the resume (the
    /// numbering was re-based), and the store forgets a closed producer.
    @Test func resumeRebasesAndCloseForgets() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 6001)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        let ssrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        await worker.sync()
        let feeder = TestSocket()
        feeder.send(makeRtp(pt: 96, seq: 1, ssrc: 6001, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        let first = try #require(sink.receiveAll(1).first)
        let seq = try header(first).sequenceNumber
        try consumer.pause()
        try consumer.resume()
        feeder.send(makeRtp(pt: 96, seq: 2, ssrc: 6001, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        #expect(sink.receiveAll(1).count == 1)
        sink.send(nack(media: ssrc, [seq]), to: UInt16(egress.tuple.localPort))
        #expect(sink.receive(timeoutMs: 200) == nil)
        #expect(try await consumer.getStats()[0].packetsRetransmitted == 0)
        worker.close()
    }
}
