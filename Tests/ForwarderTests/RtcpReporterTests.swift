import Testing
@testable import RingSFUForwarder

/// Report arithmetic on simulated time: report blocks, the sender clock
/// carried forward, round trips, scores and the report spacing.
@Suite("RTCP reporter")
struct RtcpReporterTests {
    static let ms: Int64 = 1_000_000

    /// A stream that received `count` packets from `first`, `lost` of them
    /// missing (every fifth), 20 ms apart.
    static func stream(first: UInt16 = 100, count: Int, loseEveryFifth: Bool) -> ReceiveStreamState {
        var rs = ReceiveStreamState()
        rs.clockRate = 48_000
        var gap = 0
        for i in 0..<count where !(loseEveryFifth && i % 5 == 2) {
            _ = rs.record(sequence: first &+ UInt16(i), timestamp: UInt32(i) * 960, arrivalNs: 1_000 * ms + Int64(i) * 20 * ms, repair: false, gap: &gap)
        }
        return rs
    }

    @Test func receiverBlockReportsLossOfTheInterval() {
        var rs = Self.stream(count: 100, loseEveryFifth: true)
        let block = RtcpReporter.receiverBlock(&rs, ssrc: 9, nowNs: 3_000 * Self.ms)
        #expect(block.ssrc == 9 && block.highestSequence == 199)
        #expect(block.fractionLost == 51, "20 % of 256")
        #expect(block.totalLost == 20)
        #expect(block.lastSenderReport == 0 && block.delaySinceLastSenderReport == 0, "no SR received yet")
        // The next interval saw no new loss.
        let again = RtcpReporter.receiverBlock(&rs, ssrc: 9, nowNs: 4_000 * Self.ms)
        #expect(again.fractionLost == 0 && again.totalLost == 20)
    }

    @Test func lsrAndDlsrEchoTheLastSr() {
        var rs = Self.stream(count: 10, loseEveryFifth: false)
        rs.srNtp = 0x1122_3344_5566_7788
        rs.srArrivalNs = 2_000 * Self.ms
        let block = RtcpReporter.receiverBlock(&rs, ssrc: 1, nowNs: 2_500 * Self.ms)
        #expect(block.lastSenderReport == 0x3344_5566, "middle 32 bits of the SR's NTP time")
        #expect(block.delaySinceLastSenderReport == 32_768, "0.5 s in 1/65536 s")
    }

    @Test func clockCarriesTheProducersMappingForward() throws {
        var rs = Self.stream(count: 10, loseEveryFifth: false)
        #expect(RtcpReporter.clock(of: ReceiveStreamState(), nowNs: 0, ntpNow: 0) == nil, "nothing received")
        // Without an SR: our NTP now, the newest timestamp moved on by the elapsed time.
        let plain = try #require(RtcpReporter.clock(of: rs, nowNs: rs.lastArrivalNs + 100 * Self.ms, ntpNow: 42))
        #expect(plain.ntp == 42 && plain.rtp == rs.lastTimestamp + 4_800)
        // With an SR: its mapping, 1.5 s on.
        rs.srNtp = UInt64(1000) << 32
        rs.srRtp = 5_000
        rs.srArrivalNs = 10_000 * Self.ms
        let mapped = try #require(RtcpReporter.clock(of: rs, nowNs: 11_500 * Self.ms, ntpNow: 42))
        #expect(mapped.ntp == UInt64(1001) << 32 | UInt64(1) << 31)
        #expect(mapped.rtp == 5_000 + 72_000)
    }

    @Test func roundTripFromAnAnsweringBlock() {
        var block = Rtcp.ReportBlock(ssrc: 1)
        block.lastSenderReport = 0xABCD
        block.delaySinceLastSenderReport = 6_554 // 100 ms
        let rtt = RtcpReporter.roundTripNs(block, lastSrNtpMiddle: 0xABCD, srSentNs: 1_000 * Self.ms, nowNs: 1_150 * Self.ms)
        #expect(rtt.map { abs($0 - 50 * Self.ms) < Self.ms } == true, "150 ms since our SR, 100 of them at the receiver")
        #expect(RtcpReporter.roundTripNs(block, lastSrNtpMiddle: 0x1111, srSentNs: 0, nowNs: Self.ms) == nil, "answers another SR")
        block.delaySinceLastSenderReport = 65_536 * 10
        #expect(RtcpReporter.roundTripNs(block, lastSrNtpMiddle: 0xABCD, srSentNs: 1_000 * Self.ms, nowNs: 1_150 * Self.ms) == nil, "negative")
    }

    static let scoreCases: [(UInt8, UInt8)] = [(0, 10), (13, 8), (51, 4), (128, 1), (255, 0)]

    @Test(arguments: scoreCases)
    func scoreFollowsLoss(fraction: UInt8, score: UInt8) {
        #expect(RtcpReporter.score(fractionLost: fraction) == score)
    }

    @Test func reportsAreSpreadOverHalfASecond() {
        #expect(RtcpReporter.nextDelayNs(random: 0) == 1_000 * Self.ms)
        #expect(RtcpReporter.nextDelayNs(random: 499_999_999) == 1_500 * Self.ms - 1)
        #expect(RtcpReporter.nextDelayNs(random: .max) < 1_500 * Self.ms)
    }
}
