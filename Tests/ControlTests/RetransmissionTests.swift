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

    /// A VP8 producer on a comedia plain transport, consumed on another
    /// plain transport towards `sink` with the capabilities `caps` makes.
    @RingSFUActor struct Room {
        let worker: Worker
        let ingress: PlainTransport
        let egress: PlainTransport
        let consumer: Consumer
        let ssrc: UInt32
        let feeder = TestSocket()
        let sink = TestSocket()
        func send(_ p: [UInt8]) { feeder.send(p, to: UInt16(ingress.tuple.localPort)) }
        func feedback(_ p: [UInt8]) { sink.send(p, to: UInt16(egress.tuple.localPort)) }
    }

    /// Packets stay resendable for `maxAgeMs` (a minute unless a test checks
    /// the limit: under the full suite a test can wait seconds for its turn).
    func room(producerSsrc: UInt32, storePackets: Int? = nil, maxAgeMs: Int = 60_000, caps: (RtpCapabilities) -> RtpCapabilities = { $0 }) async throws -> Room {
        var settings = WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 16, maxProducers: 16, maxConsumers: 16)
        settings.retransmissionBufferPackets = storePackets
        settings.retransmissionMaxAgeMs = maxAgeMs
        let worker = try await Worker.create(settings)
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: producerSsrc)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: caps(router.rtpCapabilities)))
        let r = Room(worker: worker, ingress: ingress, egress: egress, consumer: consumer, ssrc: try #require(consumer.rtpParameters.encodings?.first?.ssrc))
        try egress.connect(ip: "127.0.0.1", port: Int(r.sink.port))
        await worker.sync()
        return r
    }

    @Test(arguments: [true, false])
    func nackedPacketsAreResent(rtx: Bool) async throws {
        let r = try await room(producerSsrc: 6000) { caps in
            var c = caps
            if !rtx { c.codecs = c.codecs?.filter { !$0.mimeType.isRtxMime } }
            return c
        }
        let (worker, consumer, ssrc, sink) = (r.worker, r.consumer, r.ssrc, r.sink)
        #expect((consumer.rtpParameters.encodings?.first?.rtx != nil) == rtx)
        var sent: [[UInt8]] = []
        for i in 0..<10 {
            let payload = vp8Payload(keyFrame: i == 0) + [UInt8(i)]
            let p = makeRtp(pt: 96, seq: UInt16(100 + i), ts: UInt32(i) * 3000, ssrc: 6000, payload: payload)
            sent.append(payload)
            r.send(p)
        }
        let got = await sink.receiveAll(10)
        #expect(got.count == 10)
        let seqs = try got.map { try header($0).sequenceNumber }
        // Lose #3 and #5 (as the endpoint sees them) and ask for them.
        r.feedback(nack(media: ssrc, [seqs[3], seqs[5]]))
        let resent = await sink.receiveAll(2)
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
        r.feedback(nack(media: ssrc, [seqs[9] &+ 50]))
        #expect(await sink.receive(timeoutMs: 200) == nil)
        let stats = try await consumer.getStats()
        #expect(stats[0].packetsRetransmitted == 2 && stats[0].nackCount == 2)
        #expect(stats[0].retransmissionMisses == 1)
        worker.close()
    }

    /// The store keeps the most recent `retransmissionBufferPackets`
    /// packets: an older one is a counted miss, a recent one is resent.
    @Test func storeSizeBoundsWhatCanBeResent() async throws {
        let r = try await room(producerSsrc: 6003, storePackets: 4)
        for i in 0..<10 { r.send(makeRtp(pt: 96, seq: UInt16(300 + i), ssrc: 6003, payload: vp8Payload(keyFrame: i == 0) + [UInt8(i)])) }
        let got = await r.sink.receiveAll(10)
        #expect(got.count == 10)
        let seqs = try got.map { try header($0).sequenceNumber }
        r.feedback(nack(media: r.ssrc, [seqs[1]]))
        #expect(await r.sink.receive(timeoutMs: 200) == nil, "overwritten by six newer packets")
        r.feedback(nack(media: r.ssrc, [seqs[8]]))
        let resent = try #require(await r.sink.receiveAll(1).first)
        #expect(resent.last == 8)
        let stats = try await r.consumer.getStats()
        #expect(stats[0].packetsRetransmitted == 1 && stats[0].retransmissionMisses == 1)
        await #expect(throws: SFUError.self) {
            _ = try await Worker.create(WorkerSettings(retransmissionBufferPackets: 0))
        }
        r.worker.close()
    }

    /// A packet older than `retransmissionMaxAgeMs` is not resent (its
    /// receiver has given up on it): a counted miss. The rule itself is
    /// tested on simulated time (`RetransmissionStoreTests`); this checks
    /// that the setting reaches the worker, with a limit of 1 ms.
    @Test func tooOldToResend() async throws {
        let r = try await room(producerSsrc: 6004, maxAgeMs: 1)
        r.send(makeRtp(pt: 96, seq: 7, ssrc: 6004, payload: vp8Payload(keyFrame: true)))
        let first = try #require(await r.sink.receiveAll(1).first)
        let arrived = ContinuousClock.now
        // The worker's clock is the real one: let the packet age past 1 ms.
        try await Task.sleep(for: .milliseconds(10))
        #expect(ContinuousClock.now - arrived >= .milliseconds(10))
        r.feedback(nack(media: r.ssrc, [try header(first).sequenceNumber]))
        #expect(await r.sink.receive(timeoutMs: 200) == nil)
        let stats = try await r.consumer.getStats()
        #expect(stats[0].packetsRetransmitted == 0 && stats[0].retransmissionMisses == 1)
        var bad = WorkerSettings()
        bad.retransmissionMaxAgeMs = 0
        await #expect(throws: SFUError.self) { _ = try await Worker.create(bad) }
        r.worker.close()
    }

    /// Packets far (more than half the sequence space) from where the
    /// consumer's numbering started are still resent.
    @Test func farFromTheStartOfTheNumbering() async throws {
        let r = try await room(producerSsrc: 6002)
        for seq: UInt16 in [100, 20_000, 40_100] { r.send(makeRtp(pt: 96, seq: seq, ssrc: 6002, payload: vp8Payload(keyFrame: true))) }
        let got = await r.sink.receiveAll(3)
        #expect(got.count == 3)
        let last = try header(try #require(got.last)).sequenceNumber
        r.feedback(nack(media: r.ssrc, [last]))
        #expect(await r.sink.receiveAll(1).count == 1)
        r.worker.close()
    }

    /// A packet sent before a pause is not resent after the resume (the
    /// numbering was re-based).
    @Test func resumeRebasesAndCloseForgets() async throws {
        let r = try await room(producerSsrc: 6001)
        let (worker, consumer, ssrc, sink, feeder, ingress, egress) = (r.worker, r.consumer, r.ssrc, r.sink, r.feeder, r.ingress, r.egress)
        feeder.send(makeRtp(pt: 96, seq: 1, ssrc: 6001, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        let first = try #require(await sink.receiveAll(1).first)
        let seq = try header(first).sequenceNumber
        try consumer.pause()
        try consumer.resume()
        await worker.sync()
        feeder.send(makeRtp(pt: 96, seq: 2, ssrc: 6001, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        #expect(await sink.receiveAll(1).count == 1)
        sink.send(nack(media: ssrc, [seq]), to: UInt16(egress.tuple.localPort))
        #expect(await sink.receive(timeoutMs: 200) == nil)
        #expect(try await consumer.getStats()[0].packetsRetransmitted == 0)
        worker.close()
    }

    /// Padding-only packets (bandwidth probes on the media SSRC) are not
    /// forwarded, and the consumer's numbering hides them: the endpoint
    /// sees no gap, and a NACK for a packet after them maps back correctly.
    @Test func paddingOnlyPacketsAreDroppedWithoutAGap() async throws {
        let r = try await room(producerSsrc: 6100)
        let (worker, ssrc, sink) = (r.worker, r.ssrc, r.sink)
        var payloads: [[UInt8]] = []
        for i in 0..<12 {
            var p: [UInt8]
            if i == 4 || i == 5 || i == 9 {
                // Padding only: P bit, 32 bytes of padding, no payload.
                p = makeRtp(pt: 96, seq: UInt16(300 + i), ts: UInt32(i) * 3000, ssrc: 6100, payload: Array(repeating: 0, count: 31) + [32])
                p[0] |= 0x20
            } else {
                let payload = vp8Payload(keyFrame: i == 0) + [UInt8(i)]
                payloads.append(payload)
                p = makeRtp(pt: 96, seq: UInt16(300 + i), ts: UInt32(i) * 3000, ssrc: 6100, payload: payload)
            }
            r.send(p)
        }
        let got = await sink.receiveAll(9)
        #expect(got.count == 9)
        #expect(await sink.receive(timeoutMs: 100) == nil, "no padding-only packet forwarded")
        let seqs = try got.map { try header($0).sequenceNumber }
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 &+ 1 }, "continuous numbering: \(seqs)")
        for (k, packet) in got.enumerated() {
            let h = try header(packet)
            #expect(Array(packet[h.payloadOffset..<(h.payloadOffset + h.payloadLength)]) == payloads[k])
        }
        // The 7th packet out is the producer's #8 (two padding packets before it).
        r.feedback(nack(media: ssrc, [seqs[6]]))
        let resent = try #require(await sink.receiveAll(1).first)
        let h = try header(resent)
        #expect(Array(resent[(h.payloadOffset + 2)...].prefix(payloads[6].count)) == payloads[6], "RTX of the right packet")
        worker.close()
    }
}

/// The producer leg: RingSFU notices gaps in a publisher's stream, NACKs
/// them (after a short reorder tolerance, retried, bounded) and restores
/// the publisher's RTX packets into the original stream.
@Suite("NACK generator") @RingSFUActor
struct NackGeneratorTests {
    @RingSFUActor struct Setup {
        let worker: Worker
        let ingress: PlainTransport
        let producer: Producer
        let feeder = TestSocket()
        let sink = TestSocket()
        func send(_ p: [UInt8]) { feeder.send(p, to: UInt16(ingress.tuple.localPort)) }
        func media(_ seq: UInt16, key: Bool = false) -> [UInt8] {
            makeRtp(pt: 96, seq: seq, ts: UInt32(seq) * 3000, ssrc: 7000, payload: vp8Payload(keyFrame: key) + [UInt8(truncatingIfNeeded: seq)])
        }
        func rtx(_ seq: UInt16, rtxSeq: UInt16) -> [UInt8] {
            let original = media(seq)
            return makeRtp(pt: 97, seq: rtxSeq, ts: UInt32(seq) * 3000, ssrc: 7001, payload: [UInt8(seq >> 8), UInt8(seq & 0xFF)] + Array(original[12...]))
        }
    }

    func setup() async throws -> Setup {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let params = RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000, rtcpFeedback: [RtcpFeedback(type: "nack"), RtcpFeedback(type: "nack", parameter: "pli")]),
                                            RtpCodecParameters(mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: ["apt": .number(96)])],
                                   encodings: [RtpEncodingParameters(ssrc: 7000, rtx: RtxParameters(ssrc: 7001))], rtcp: RtcpParameters(cname: "n"))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: params))
        let s = Setup(worker: worker, ingress: ingress, producer: producer)
        s.feeder.acceptsRtcp = true
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(s.sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        return s
    }

    /// Sequence numbers NACKed in the RTCP the feeder receives within `ms`.
    func nacked(_ s: TestSocket, ms: Int) async -> [UInt16] {
        var out: [UInt16] = []
        func collect(_ d: [UInt8]) {
            d.withUnsafeBytes { raw in
                try? Rtcp.forEach(raw.baseAddress!, count: raw.count) { v in
                    if v.type == RtcpType.rtpfb, v.count == RtcpFormat.nack, (try? Rtcp.feedbackSsrcs(v))?.media == 7000 {
                        try? Rtcp.forEachNackedSequence(v) { out.append($0) }
                    }
                }
            }
        }
        let deadline = Date().addingTimeInterval(Double(ms) / 1000)
        while Date() < deadline {
            // Short blocking reads, yielding the actor in between.
            await Task.yield()
            guard let d = await s.receive(timeoutMs: 10) else { continue }
            collect(d)
        }
        // What arrived while this test was not scheduled counts too.
        while let d = await s.receive(timeoutMs: 1) { collect(d) }
        return out
    }

    @Test func gapsAreNackedAndRtxRepairsThem() async throws {
        let s = try await setup()
        for seq: UInt16 in [10, 11, 12, 14, 15] { s.send(s.media(seq, key: seq == 10)) }
        #expect(await s.sink.receiveAll(5).count == 5)
        #expect(Set(await nacked(s.feeder, ms: 150)) == [13])
        // The repair is forwarded as the original packet.
        s.send(s.rtx(13, rtxSeq: 500))
        let repaired = try #require(await s.sink.receiveAll(1).first)
        let original = s.media(13)
        // (Its header gained the consumer's transport-wide number.)
        let h = try repaired.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
        #expect(Array(repaired[h.payloadOffset...]) == Array(original[12...]))
        // A second copy is not forwarded; nothing is NACKed any more (after
        // any retry that was already on its way).
        s.send(s.rtx(13, rtxSeq: 501))
        #expect(await s.sink.receive(timeoutMs: 150) == nil)
        _ = await nacked(s.feeder, ms: 50)
        #expect(await nacked(s.feeder, ms: 300).isEmpty)
        s.worker.close()
    }

    @Test func unrepairedLossIsRetriedThenGivenUp() async throws {
        let s = try await setup()
        for seq: UInt16 in [1, 2, 4] { s.send(s.media(seq, key: seq == 1)) }
        _ = await s.sink.receiveAll(3)
        // Retried about every 100 ms, at most 10 times.
        let asked = await nacked(s.feeder, ms: 1600)
        #expect(asked.allSatisfy { $0 == 3 })
        // Retried, and bounded (the schedule itself: NackGeneratorUnitTests).
        #expect(asked.count >= 2 && asked.count <= 10, "\(asked.count) NACKs")
        let stats = try await s.producer.getStats()
        #expect(stats[0].nackCount == UInt64(asked.count))
        s.worker.close()
    }

    /// Producers closed while their streams wait for NACKs, and new ones
    /// reusing those streams: each stream is listed once, NACKs still work.
    @Test func closedProducersLeaveTheNackListClean() async throws {
        let s = try await setup()
        let router = try #require(s.ingress.router)
        let params = RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000, rtcpFeedback: [RtcpFeedback(type: "nack")])],
                                   encodings: (0..<3).map { RtpEncodingParameters(ssrc: 7100 + UInt32($0)) }, rtcp: RtcpParameters(cname: "n"))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        for _ in 0..<5 {
            let p = try s.ingress.produce(ProducerOptions(kind: .video, rtpParameters: params))
            _ = try egress.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: router.rtpCapabilities))
            await s.worker.sync()
            for layer: UInt32 in 0..<3 {
                for seq: UInt16 in [1, 3] { s.send(makeRtp(pt: 96, seq: seq, ssrc: 7100 + layer, payload: vp8Payload(keyFrame: true))) }
            }
            await s.worker.sync()
            p.close()
        }
        // The original producer still gets its gaps NACKed.
        for seq: UInt16 in [50, 52] { s.send(s.media(seq, key: seq == 50)) }
        #expect(await nacked(s.feeder, ms: 300).contains(51))
        s.worker.close()
    }

    @Test func aBurstTooLargeToRepairAsksForAKeyFrame() async throws {
        let s = try await setup()
        s.send(s.media(1, key: true))
        s.send(s.media(200))
        var sawPli = false
        let deadline = Date().addingTimeInterval(0.5)
        while Date() < deadline && !sawPli {
            await Task.yield()
            if let d = await s.feeder.receive(timeoutMs: 10) {
                sawPli = KeyFrameRequestTests.keyFrameRequests(d).contains { $0.ssrc == 7000 }
            }
        }
        #expect(sawPli)
        #expect(await nacked(s.feeder, ms: 200).isEmpty)
        s.worker.close()
    }
}
