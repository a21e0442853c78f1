import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// VP8 temporal layers over real UDP: one encoding with `scalabilityMode`
/// L1T3 makes a simulcast-type consumer (mediasoup's rule) whose
/// `preferredLayers.temporalLayer` drops the pictures above it, with the
/// sequence numbers and picture ids the endpoint sees left continuous.
@Suite("Temporal layers") @RingSFUActor
struct TemporalLayerTests {
    @Test func theConsumerDropsAndRestoresTemporalLayers() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let params = RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000)],
                                   encodings: [RtpEncodingParameters(ssrc: 777, scalabilityMode: "L1T3")], rtcp: RtcpParameters(cname: "t"))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: params))
        #expect(producer.type == .simulcast)
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        #expect(throws: SFUError.self) {
            try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities,
                                               preferredLayers: ConsumerLayers(spatialLayer: 0, temporalLayer: 3)))
        }
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities,
                                                          preferredLayers: ConsumerLayers(spatialLayer: 0, temporalLayer: 0)))
        #expect(consumer.type == .simulcast)
        await worker.sync()
        let feeder = TestSocket()
        let port = UInt16(ingress.tuple.localPort)
        var seq: UInt16 = 100, picture: UInt16 = 32766, tl0: UInt8 = 254
        let pattern: [UInt8] = [0, 2, 1, 2]
        // One packet per picture, the usual 0 2 1 2 pattern.
        func send(_ pictures: Int) {
            for _ in 0..<pictures {
                let tid = pattern[Int(picture % 4)]
                if tid == 0 { tl0 &+= 1 }
                let d = vp8Descriptor(pictureId: picture, tl0: tl0, tid: tid, key: seq == 100)
                feeder.send(makeRtp(pt: 96, seq: seq, ts: UInt32(seq) &* 3000, ssrc: 777, payload: d), to: port)
                seq &+= 1
                picture = (picture + 1) & 0x7FFF
            }
        }
        func received(_ count: Int) async throws -> [(seq: UInt16, picture: UInt16, tl0: UInt8, tid: UInt8)] {
            try await sink.receiveAll(count).map { d in
                let h = try d.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
                let p = Array(d[h.payloadOffset...])
                let (pictureId, tl0) = vp8Numbers(p)
                return (h.sequenceNumber, pictureId, tl0, p[5] >> 6)
            }
        }
        // Picture 32766 has TID 2 in the pattern; start on a base picture.
        picture = 32768 & 0x7FFF
        send(12)
        let base = try await received(3)
        #expect(base.map(\.tid) == [0, 0, 0], "only the base layer: \(base)")
        #expect(zip(base, base.dropFirst()).allSatisfy { $1.seq == $0.seq &+ 1 && $1.picture == ($0.picture + 1) & 0x7FFF && $1.tl0 == $0.tl0 &+ 1 })
        #expect(await sink.receive(timeoutMs: 100) == nil)
        #expect(consumer.currentLayers == ConsumerLayers(spatialLayer: 0, temporalLayer: 0))
        // All layers again: from the next base picture on.
        try consumer.setPreferredLayers(ConsumerLayers(spatialLayer: 0, temporalLayer: 2))
        await worker.sync()
        send(8)
        let all = try await received(8)
        #expect(all.map(\.tid) == [0, 2, 1, 2, 0, 2, 1, 2])
        let stream = base + all
        #expect(zip(stream, stream.dropFirst()).allSatisfy { $1.seq == $0.seq &+ 1 && $1.picture == ($0.picture + 1) & 0x7FFF },
                "numbering and picture ids continue: \(stream)")
        await worker.sync()
        #expect(consumer.currentLayers == ConsumerLayers(spatialLayer: 0, temporalLayer: 2))
        #expect(throws: SFUError.self) { try consumer.setPreferredLayers(ConsumerLayers(spatialLayer: 0, temporalLayer: 3)) }
        await worker.close()
    }
}
