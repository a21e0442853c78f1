import Testing
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// Hostile input end to end: random and mutated RTP and RTCP (valid
/// structure with random values: extensions, NACK ranges, SR times, report
/// blocks, RTX payloads, FIR numbers) thrown at every parser of a live
/// worker. Nothing may trap or stall: media keeps flowing to a well-behaved
/// consumer afterwards, and the bad input is counted.
@Suite("Hostile RTP and RTCP") @RingSFUActor
struct HostileRtpRtcpTests {
    struct Rng: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
    }

    func bytes(_ n: Int, _ rng: inout Rng) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }

    /// A structurally valid RTCP packet of a random type with random contents.
    func rtcp(_ rng: inout Rng, media: UInt32) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 600)
        let n: Int = buf.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            switch Int.random(in: 0..<7, using: &rng) {
            case 0:
                return RtcpWriter.senderReport(p, capacity: 600, Rtcp.SenderInfo(ssrc: [media, 0, UInt32.max, 5000].randomElement(using: &rng)!, ntpSeconds: .random(in: 0...UInt32.max, using: &rng),
                                                                                ntpFraction: .random(in: 0...UInt32.max, using: &rng), rtpTimestamp: .random(in: 0...UInt32.max, using: &rng),
                                                                                packetCount: .random(in: 0...UInt32.max, using: &rng), octetCount: .random(in: 0...UInt32.max, using: &rng)),
                                               blockCount: Int.random(in: 0...3, using: &rng)) { _ in self.block(&rng, media) }
            case 1:
                return RtcpWriter.receiverReport(p, capacity: 600, ssrc: 1, blockCount: Int.random(in: 0...31, using: &rng)) { _ in self.block(&rng, media) }
            case 2:
                let count = Int.random(in: 1...40, using: &rng)
                let base = UInt16.random(in: 0...UInt16.max, using: &rng)
                return RtcpWriter.nack(p, capacity: 600, sender: 1, media: media, count: count) { i in base &+ UInt16(i * Int.random(in: 1...3, using: &rng)) }
            case 3:
                return RtcpWriter.fir(p, capacity: 600, sender: 1, target: media, sequence: .random(in: 0...255, using: &rng))
            case 4:
                return RtcpWriter.pli(p, capacity: 600, sender: 1, media: media)
            case 5:
                return RtcpWriter.remb(p, capacity: 600, sender: 1, bitrate: .random(in: 0...UInt64(1) << 40, using: &rng), ssrcCount: Int.random(in: 0...4, using: &rng)) { _ in media }
            default:
                let body = self.bytes(Int.random(in: 0...40, using: &rng) * 4, &rng)
                return body.withUnsafeBytes { RtcpWriter.app(p, capacity: 600, subtype: .random(in: 0...31, using: &rng), ssrc: media, name: 0x5858_5858, data: $0) }
            }
        }
        var packet = Array(buf[0..<n])
        // Sometimes break it: flip bytes or cut it short.
        if Bool.random(using: &rng), !packet.isEmpty {
            for _ in 0..<Int.random(in: 1...4, using: &rng) { packet[Int.random(in: 0..<packet.count, using: &rng)] = .random(in: 0...255, using: &rng) }
        }
        if Int.random(in: 0..<4, using: &rng) == 0 { packet = Array(packet.prefix(Int.random(in: 0...packet.count, using: &rng))) }
        return packet
    }

    func block(_ rng: inout Rng, _ media: UInt32) -> Rtcp.ReportBlock {
        Rtcp.ReportBlock(ssrc: [media, .random(in: 0...UInt32.max, using: &rng)].randomElement(using: &rng)!, fractionLost: .random(in: 0...255, using: &rng),
                         totalLost: .random(in: -0x80_0000...0x7F_FFFF, using: &rng), highestSequence: .random(in: 0...UInt32.max, using: &rng),
                         jitter: .random(in: 0...UInt32.max, using: &rng), lastSenderReport: .random(in: 0...UInt32.max, using: &rng),
                         delaySinceLastSenderReport: .random(in: 0...UInt32.max, using: &rng))
    }

    /// RTP for the producer (or its RTX stream) with random extensions, sequence numbers, payloads.
    func rtp(_ rng: inout Rng) -> [UInt8] {
        let ssrc: UInt32 = [9000, 9001, .random(in: 0...UInt32.max, using: &rng)].randomElement(using: &rng)!
        let pt: UInt8 = [96, 97, .random(in: 0...127, using: &rng)].randomElement(using: &rng)!
        var exts: [(UInt8, [UInt8])] = []
        for _ in 0..<Int.random(in: 0...4, using: &rng) { exts.append((.random(in: 1...14, using: &rng), bytes(Int.random(in: 1...16, using: &rng), &rng))) }
        var p = makeRtp(pt: pt, seq: .random(in: 0...UInt16.max, using: &rng), ts: .random(in: 0...UInt32.max, using: &rng), ssrc: ssrc,
                        marker: .random(using: &rng), payload: bytes(Int.random(in: 0...300, using: &rng), &rng), extensions: exts)
        if Bool.random(using: &rng) {
            for _ in 0..<Int.random(in: 1...3, using: &rng) { p[Int.random(in: 0..<min(p.count, 40), using: &rng)] = .random(in: 0...255, using: &rng) }
        }
        return p
    }

    @Test(arguments: [UInt64(0x9E37_79B9_7F4A_7C15), 42, 0xDEAD_BEEF])
    func randomRtpAndRtcpNeverTrapOrStall(seed: UInt64) async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let params = RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000, rtcpFeedback: [RtcpFeedback(type: "nack"), RtcpFeedback(type: "nack", parameter: "pli")]),
                                            RtpCodecParameters(mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: ["apt": .number(96)])],
                                   headerExtensions: [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 3)],
                                   encodings: [RtpEncodingParameters(ssrc: 9000, rtx: RtxParameters(ssrc: 9001))], rtcp: RtcpParameters(cname: "h"))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: params))
        try producer.enableTraceEvent(types: ["keyframe", "nack", "pli", "fir", "sr"])
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities, mid: "a-longer-mid"))
        let media = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        try consumer.enableTraceEvent(types: ["rtp", "nack", "pli", "fir", "sr"])
        await worker.sync()
        let feeder = TestSocket()
        var rng = Rng(state: seed)
        for round in 0..<40 {
            for _ in 0..<100 { feeder.send(rtp(&rng), to: UInt16(ingress.tuple.localPort)) }
            for _ in 0..<50 { feeder.send(rtcp(&rng, media: 9000), to: UInt16(ingress.tuple.localPort)) }
            // The consumer's side: its endpoint's address is the sink's.
            for _ in 0..<50 { sink.send(rtcp(&rng, media: media), to: UInt16(egress.tuple.localPort)) }
            if round % 10 == 9 { try await Task.sleep(for: .milliseconds(20)) }
        }
        // Still alive and forwarding: a clean key frame gets through.
        while await sink.receive(timeoutMs: 50) != nil {}
        feeder.send(makeRtp(pt: 96, seq: 1, ssrc: 9000, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        feeder.send(makeRtp(pt: 96, seq: 2, ssrc: 9000, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        #expect(await sink.receiveAll(1, timeoutMs: 2000).count >= 1)
        let usage = await worker.getResourceUsage()
        #expect(usage.dropMalformed + usage.dropUnknownSsrc + usage.dropNotRtp > 0)
        #expect(usage.rtcpIn > 0)
        #expect(!worker.died)
        _ = try await consumer.getStats()
        _ = try await producer.getStats()
        worker.close()
    }
}
