/// The arithmetic of RTCP reports (RFC 3550 section 6.4), apart from the
/// loop that sends them: what a receiver report block says about a stream
/// we receive, what a sender report says about one we send, the round trip
/// from a report block answering our SR, scores, and when the next round is
/// due. Pure functions: time and randomness come in as parameters.
enum RtcpReporter {
    /// Reports go out every 1 to 1.5 s; `random` spreads them so workers
    /// and peers do not synchronise.
    static func nextDelayNs(random: UInt64) -> Int64 {
        1_000_000_000 + Int64(random % 500_000_000)
    }

    /// Our report block about a received stream (it consumes the stream's
    /// interval counters: call once per report).
    static func receiverBlock(_ rs: inout ReceiveStreamState, ssrc: UInt32, nowNs: Int64) -> Rtcp.ReportBlock {
        let fraction = rs.intervalFractionLost()
        var block = Rtcp.ReportBlock(ssrc: ssrc, fractionLost: fraction,
                                     totalLost: Int32(clamping: rs.lost),
                                     highestSequence: UInt32(truncatingIfNeeded: rs.extendedMax),
                                     jitter: UInt32(clamping: rs.jitterQ4 >> 4))
        if rs.srArrivalNs != 0 {
            block.lastSenderReport = UInt32(truncatingIfNeeded: rs.srNtp >> 16)
            // In 1/65536 s; a day's delay at most (no overflow).
            let delay = min(max(0, nowNs - rs.srArrivalNs), 86_400_000_000_000)
            block.delaySinceLastSenderReport = UInt32(clamping: delay / 1000 * 65536 / 1_000_000)
        }
        return block
    }

    /// The NTP time and RTP timestamp of "now" for a stream we forward: the
    /// producer's own mapping (its last SR) carried forward, which keeps
    /// audio/video sync across the SFU; without an SR, `ntpNow` against the
    /// newest packet's timestamp carried forward. Nil before any packet.
    static func clock(of rs: ReceiveStreamState, nowNs: Int64, ntpNow: UInt64) -> (ntp: UInt64, rtp: UInt32)? {
        if rs.srArrivalNs != 0 {
            let elapsed = max(0, nowNs - rs.srArrivalNs)
            return (rs.srNtp &+ MediaTime.ntp(elapsed), rs.srRtp &+ MediaTime.rtp(elapsed, clockRate: rs.clockRate))
        }
        guard rs.lastArrivalNs != 0 else { return nil }
        return (ntpNow, rs.lastTimestamp &+ MediaTime.rtp(max(0, nowNs - rs.lastArrivalNs), clockRate: rs.clockRate))
    }

    /// The round trip from a report block that answers our last SR (its
    /// LSR matches the SR we sent at `srSentNs`), nil otherwise.
    static func roundTripNs(_ block: Rtcp.ReportBlock, lastSrNtpMiddle: UInt32, srSentNs: Int64, nowNs: Int64) -> Int64? {
        guard block.lastSenderReport != 0, block.lastSenderReport == lastSrNtpMiddle else { return nil }
        let delay = Int64(block.delaySinceLastSenderReport) * 15_625 / 1024 * 1000 // 1/65536 s -> ns
        let rtt = nowNs - srSentNs - delay
        return rtt >= 0 ? rtt : nil
    }

    /// 0-10 from a fraction lost (of 256): 10 at no loss, about 8 at 5 %,
    /// 4 at 20 %, 0 at half the packets lost.
    static func score(fractionLost: UInt8) -> UInt8 {
        let kept = 1 - Double(fractionLost) / 256
        return UInt8(max(0, min(10, (10 * kept * kept * kept * kept).rounded())))
    }
}
