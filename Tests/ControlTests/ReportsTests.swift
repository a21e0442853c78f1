import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// RTCP reports over real UDP: RRs to a producer's endpoint every 1-1.5 s
/// with its loss, jitter and LSR/DLSR; SRs with the producer's NTP/RTP
/// mapping and SDES CNAME to a consumer's endpoint; scores that fall under
/// loss and recover; RTT from the consumer endpoint's RR.
@Suite("RTCP reports") @RingSFUActor
struct ReportsTests {
    struct Seen {
        var at: Date
        var bytes: [UInt8]
    }

    func drain(_ s: TestSocket, into list: inout [Seen]) async {
        while let d = await s.receive(timeoutMs: 1) { list.append(Seen(at: Date(), bytes: d)) }
    }

    func blocks(_ d: [UInt8], type: UInt8) -> [Rtcp.ReportBlock] {
        var out: [Rtcp.ReportBlock] = []
        d.withUnsafeBytes { raw in
            try? Rtcp.forEach(raw.baseAddress!, count: raw.count) { v in
                if v.type == type { try? Rtcp.forEachReportBlock(v) { out.append($0) } }
            }
        }
        return out
    }

    @Test func reportsScoresAndRtt() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 8000)))
        let pevents = producer.events
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        let cevents = consumer.events
        let consumerSsrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        await worker.sync()
        let feeder = TestSocket()
        feeder.acceptsRtcp = true
        sink.acceptsRtcp = true
        var toFeeder: [Seen] = [], toSink: [Seen] = []
        // The publisher's SR: NTP 0x1122334455667788 <-> RTP 480000.
        var sr = [UInt8](repeating: 0, count: 28)
        _ = sr.withUnsafeMutableBytes { RtcpWriter.senderReport($0.baseAddress!, capacity: 28, Rtcp.SenderInfo(ssrc: 8000, ntpSeconds: 0x1122_3344, ntpFraction: 0x5566_7788, rtpTimestamp: 480_000, packetCount: 0, octetCount: 0)) }
        let start = Date()
        // 3 s at 50 packets/s, every 5th lost (20 %), then 3 s without loss.
        // (Not made up when this test gets its turn late: a burst would
        // blur the two halves.)
        for i in 0..<300 {
            if i == 0 { feeder.send(sr, to: UInt16(ingress.tuple.localPort)) }
            if i >= 150 || i % 5 != 2 {
                feeder.send(makeRtp(pt: 111, seq: UInt16(i), ts: 480_000 + UInt32(i) * 960, ssrc: 8000), to: UInt16(ingress.tuple.localPort))
            }
            try await Task.sleep(for: .milliseconds(20))
            await drain(feeder, into: &toFeeder)
            await drain(sink, into: &toSink)
        }
        // 50 packets/s of 112 bytes: about 45 kbit/s in, the same out (read
        // right after the last packet: the rates cover the last second, less
        // when this test was kept waiting).
        let tin = try await ingress.getStats(), tout = try await egress.getStats()
        let streamBitrate = try await producer.getStats()[0].bitrate
        #expect(tin[0].recvBitrate > 10_000 && tin[0].recvBitrate < 80_000, "\(tin[0].recvBitrate)")
        #expect(tout[0].sendBitrate > 10_000 && tin[0].rtcpPacketsReceived >= 1)
        #expect(streamBitrate > 10_000)
        // Receiver reports to the publisher, every 1 to 1.5 s (the exact
        // spacing is RtcpReporter's unit test; here, seen when this test
        // reads them, only the average is firm).
        let rrs = toFeeder.filter { !blocks($0.bytes, type: RtcpType.rr).isEmpty }
        #expect(rrs.count >= 3)
        let span = rrs.last!.at.timeIntervalSince(rrs.first!.at) / Double(rrs.count - 1)
        #expect(span > 0.8 && span < 1.8, "RR interval \(span) s on average")
        // Reports from the lossy half say so (the fraction of an interval
        // depends on how many packets this test got to send in it: exact
        // figures are RtcpReporter's unit test); the cumulative count is
        // exact: 30 lost, then no more.
        let blocksSeen = rrs.compactMap { blocks($0.bytes, type: RtcpType.rr).first }
        let lossy = try #require(blocksSeen.first { $0.fractionLost > 0 })
        #expect(lossy.ssrc == 8000)
        #expect(lossy.lastSenderReport == 0x3344_5566, "LSR: middle of the SR's NTP time")
        #expect(blocksSeen.map(\.totalLost).max() == 30)
        let last = try #require(blocksSeen.last)
        #expect(last.fractionLost == 0 && last.totalLost == 30)
        // Sender reports (with the CNAME) to the consumer's endpoint.
        var srs: [(at: Date, info: Rtcp.SenderInfo, cname: String)] = []
        for s in toSink {
            s.bytes.withUnsafeBytes { raw in
                var info: Rtcp.SenderInfo? = nil
                var cname = ""
                try? Rtcp.forEach(raw.baseAddress!, count: raw.count) { v in
                    if v.type == RtcpType.sr { info = try? Rtcp.senderInfo(v) }
                    if v.type == RtcpType.sdes {
                        try? Rtcp.forEachSdesItem(v) { _, type, off, len in if type == 1 { cname = String(decoding: s.bytes[off..<off + len], as: UTF8.self) } }
                    }
                }
                if let info { srs.append((s.at, info, cname)) }
            }
        }
        #expect(srs.count >= 3)
        let first = try #require(srs.first)
        #expect(first.info.ssrc == consumerSsrc && first.cname == "test")
        // The producer's mapping carried forward: RTP time advances at 48 kHz
        // with NTP time (within 50 ms).
        let ntpSeconds = Double(first.info.ntpSeconds) + Double(first.info.ntpFraction) / 4_294_967_296 - (Double(0x1122_3344) + Double(0x5566_7788) / 4_294_967_296)
        let rtpSeconds = Double(first.info.rtpTimestamp &- 480_000) / 48_000
        #expect(abs(ntpSeconds - rtpSeconds) < 0.05, "ntp \(ntpSeconds) rtp \(rtpSeconds)")
        #expect(first.at.timeIntervalSince(start) < 2.0)

        // The consumer's endpoint reports 50 % loss: its score falls; RTT is measured.
        let lsr = UInt32(truncatingIfNeeded: (UInt64(srs.last!.info.ntpSeconds) << 32 | UInt64(srs.last!.info.ntpFraction)) >> 16)
        var rr = [UInt8](repeating: 0, count: 32)
        _ = rr.withUnsafeMutableBytes { raw in
            RtcpWriter.receiverReport(raw.baseAddress!, capacity: 32, ssrc: 55, blockCount: 1) { _ in
                Rtcp.ReportBlock(ssrc: consumerSsrc, fractionLost: 128, totalLost: 40, highestSequence: 300, jitter: 7, lastSenderReport: lsr, delaySinceLastSenderReport: 0)
            }
        }
        sink.send(rr, to: UInt16(egress.tuple.localPort))
        try await Task.sleep(for: .milliseconds(200))
        let stats = try await consumer.getStats()
        #expect(stats[0].score == 1 && stats[0].fractionLost == 128 && stats[0].packetsLost == 40)
        #expect((stats[0].roundTripTime ?? -1) >= 0)
        #expect(consumer.score.score == 1)
        let pstats = try await producer.getStats()
        #expect(pstats[0].packetsLost == 30 && pstats[0].score == 10)
        worker.close()
        // Scores: the producer's fell under loss and came back.
        var producerScores: [Int] = []
        for e in await collect(pevents) { if case .score(let s) = e { producerScores.append(s[0].score) } }
        #expect(producerScores.contains { $0 <= 5 } && producerScores.last == 10, "\(producerScores)")
        var consumerScores: [Int] = []
        for e in await collect(cevents) { if case .score(let s) = e { consumerScores.append(s.score) } }
        #expect(consumerScores.last == 1)
    }
}
