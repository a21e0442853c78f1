import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// `setMaxIncomingBitrate` over real UDP: the producer's endpoint gets a
/// REMB with the cap when media arrives (no more than every 1.5 s), and
/// REMBs of 0 once the cap is lifted; the outgoing limits are validated
/// as mediasoup validates them.
@Suite("Bitrate limits") @RingSFUActor
struct BitrateLimitTests {
    /// The REMB bitrates in an RTCP datagram.
    static func rembs(_ bytes: [UInt8]) -> [(bitrate: UInt64, ssrcs: Int)] {
        var out: [(UInt64, Int)] = []
        bytes.withUnsafeBytes { raw in
            try? Rtcp.forEach(raw.baseAddress!, count: raw.count) { v in
                guard v.type == RtcpType.psfb, v.count == RtcpFormat.afb else { return }
                var n = 0
                if let bitrate = try? Rtcp.remb(v, { _ in n += 1 }) { out.append((bitrate, n)) }
            }
        }
        return out.map { (bitrate: $0.0, ssrcs: $0.1) }
    }

    /// REMB bitrates the socket receives: waits up to `waitMs` for
    /// `expected` of them, then takes what else arrives within `quietMs`.
    /// Reads at least once and drains at the end, so a test that was not
    /// scheduled while the datagrams arrived still sees them.
    func collectRembs(_ s: TestSocket, expected: Int, waitMs: Int = 3000, quietMs: Int = 150) async -> [UInt64] {
        var got: [UInt64] = []
        let deadline = Date().addingTimeInterval(Double(waitMs) / 1000)
        repeat {
            await Task.yield()
            if let d = await s.receive(timeoutMs: 10) { got += Self.rembs(d).map(\.bitrate) }
        } while got.count < expected && Date() < deadline
        let quiet = Date().addingTimeInterval(Double(quietMs) / 1000)
        repeat {
            await Task.yield()
            if let d = await s.receive(timeoutMs: 10) { got += Self.rembs(d).map(\.bitrate) }
        } while Date() < quiet
        while let d = await s.receive(timeoutMs: 0) { got += Self.rembs(d).map(\.bitrate) }
        return got
    }

    @Test func maxIncomingBitrateIsAnnouncedByRemb() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        _ = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 7100)))
        await worker.sync()
        let feeder = TestSocket()
        feeder.acceptsRtcp = true
        let port = UInt16(ingress.tuple.localPort)
        var seq: UInt16 = 0
        func send() {
            feeder.send(makeRtp(pt: 96, seq: seq, ts: UInt32(seq) * 3000, ssrc: 7100, payload: vp8Payload(keyFrame: seq == 0)), to: port)
            seq &+= 1
        }
        // No cap: no REMB.
        for _ in 0..<5 { send() }
        #expect(await collectRembs(feeder, expected: 0).isEmpty)

        try ingress.setMaxIncomingBitrate(1_000_000)
        await worker.sync()
        // The first packet after the cap brings one REMB; the following
        // ones, well within 1.5 s, bring none.
        for _ in 0..<10 { send() }
        let capped = await collectRembs(feeder, expected: 1)
        #expect(capped == [1_000_000])

        // Lifting the cap: a REMB of 0 at once (no media needed).
        try ingress.setMaxIncomingBitrate(0)
        #expect(await collectRembs(feeder, expected: 1) == [0])
        let stats = try await ingress.getStats()
        #expect(stats[0].maxIncomingBitrate == nil)
        try ingress.setMaxIncomingBitrate(300_000)
        #expect(try await ingress.getStats()[0].maxIncomingBitrate == 300_000)

        #expect(throws: SFUError.invalidArgument("invalid bitrate -1 (0 for none, or bits per second)")) {
            try ingress.setMaxIncomingBitrate(-1)
        }
        ingress.close()
        #expect(throws: SFUError.self) { try ingress.setMaxIncomingBitrate(1) }
        worker.close()
    }

    @Test func outgoingLimitsAreValidated() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        #expect(throws: SFUError.invalidArgument("bitrate must be >= 30000 or 0 (unlimited)")) { try t.setMaxOutgoingBitrate(29_999) }
        try t.setMaxOutgoingBitrate(500_000)
        #expect(throws: SFUError.invalidArgument("bitrate must be <= current max outgoing bitrate (500000) or 0 (unlimited)")) {
            try t.setMinOutgoingBitrate(600_000)
        }
        try t.setMinOutgoingBitrate(100_000)
        #expect(throws: SFUError.invalidArgument("bitrate must be >= current min outgoing bitrate (100000) or 0 (unlimited)")) {
            try t.setMaxOutgoingBitrate(50_000)
        }
        try t.setMaxOutgoingBitrate(0)
        let stats = try await t.getStats()[0]
        #expect(stats.maxOutgoingBitrate == nil && stats.minOutgoingBitrate == 100_000)
        let direct = try router.createDirectTransport()
        #expect(throws: SFUError.unsupported("setMaxIncomingBitrate() not implemented in DirectTransport")) {
            try direct.setMaxIncomingBitrate(100_000)
        }
        worker.close()
    }
}
