/// Receive-side state of a producer's stream (RFC 3550 appendix A.1/A.8
/// statistics, the last sender report, and the NACK generator's list of
/// missing packets). Kept in a table beside the producers so the per-packet
/// producer state stays small.
package struct ReceiveStreamState {
    /// The producer and layer this stream belongs to (-1: free).
    var producer: Int32 = -1
    var layer = 0
    /// The templates of the last dependency descriptor structure the
    /// stream sent (AV1 SVC, H264 temporal layers).
    var templates = DependencyTemplates()
    var inNackList = false
    var clockRate: Int64 = 90_000
    var nackEnabled = false
    var started = false
    var baseSequence: UInt16 = 0
    var maxSequence: UInt16 = 0
    var cycles: UInt32 = 0
    var received: UInt64 = 0
    var expectedPrior: UInt64 = 0
    var receivedPrior: UInt64 = 0
    /// Interarrival jitter in timestamp units, times 16 (RFC 3550 A.8).
    var jitterQ4: Int64 = 0
    var lastTransit: Int64 = 0
    var haveTransit = false
    /// The last SR: NTP time, RTP time, and when it arrived.
    var srNtp: UInt64 = 0
    var srRtp: UInt32 = 0
    var srArrivalNs: Int64 = 0
    /// The newest packet's timestamp and arrival (for SRs without a producer SR).
    var lastTimestamp: UInt32 = 0
    var lastArrivalNs: Int64 = 0
    /// When the newest frame (timestamp) began, and the usual time between
    /// frames (a moving average): how long a silence means "stopped".
    var lastFrameArrivalNs: Int64 = 0
    /// When the first packet arrived.
    var firstArrivalNs: Int64 = 0
    var frameIntervalNs: Int64 = 33_000_000
    /// Packets recovered by RTX or late arrival, and dropped duplicates.
    var recovered: UInt64 = 0
    var duplicates: UInt64 = 0
    /// What is missing and being asked for (with NACK negotiated).
    var nack = NackGenerator()
    var lastFractionLost: UInt8 = 0
    /// Bytes received on this stream, and at the last report (bitrate).
    var bytes: UInt64 = 0
    var bytesAtLastReport: UInt64 = 0
    var bitrate: UInt64 = 0

    var extendedMax: UInt64 { UInt64(cycles) << 16 | UInt64(maxSequence) }
    var expected: UInt64 { started ? extendedMax - UInt64(baseSequence) + 1 : 0 }
    var lost: Int64 { Int64(expected) - Int64(received) }

    /// Records an arriving packet. Returns false for a duplicate RTX
    /// repair (nothing was missing there), which is then not forwarded.
    mutating func record(sequence: UInt16, timestamp: UInt32, arrivalNs: Int64, repair: Bool, gap: inout Int) -> Bool {
        gap = 0
        if !started {
            started = true
            firstArrivalNs = arrivalNs
            baseSequence = sequence
            maxSequence = sequence
            received = 1
            updateJitter(timestamp, arrivalNs)
            return true
        }
        let delta = sequence &- maxSequence
        if delta != 0 && delta < 0x8000 {
            // Newer: anything skipped is missing.
            if sequence < maxSequence { cycles &+= 1 }
            gap = Int(delta) - 1
            // A burst too large to repair: the caller asks for a key frame.
            if nackEnabled && gap > 0 && !nack.lost(from: maxSequence &+ 1, count: gap, nowNs: arrivalNs) { gap = -1 }
            maxSequence = sequence
            received &+= 1
            updateJitter(timestamp, arrivalNs)
            return true
        }
        // Older or equal: a repair, a late packet, or a duplicate.
        if nack.arrived(sequence) {
            recovered &+= 1
            received &+= 1
            return true
        }
        if repair || delta == 0 { duplicates &+= 1; return false }
        received &+= 1
        return true
    }

    mutating func updateJitter(_ timestamp: UInt32, _ arrivalNs: Int64) {
        // Arrival in timestamp units; wrapping is harmless (differences only).
        let arrival = (arrivalNs / 1000) &* clockRate / 1_000_000
        let transit = arrival &- Int64(timestamp)
        if haveTransit {
            var d = transit - lastTransit
            if d < 0 { d = -d }
            if d < clockRate * 10 { jitterQ4 += d - ((jitterQ4 + 8) >> 4) }
        }
        lastTransit = transit
        haveTransit = true
        if timestamp != lastTimestamp || lastFrameArrivalNs == 0 {
            if lastFrameArrivalNs != 0 {
                let interval = min(max(0, arrivalNs - lastFrameArrivalNs), Self.maxFrameIntervalNs)
                frameIntervalNs += (interval - frameIntervalNs) / 8
            }
            lastFrameArrivalNs = arrivalNs
        }
        lastTimestamp = timestamp
        lastArrivalNs = arrivalNs
    }

    /// The least silence after which a stream counts as stopped, and the
    /// longest frame interval the average takes in.
    package static let minSilenceNs: Int64 = 400_000_000
    static let maxFrameIntervalNs: Int64 = 2_500_000_000

    /// No packet for four usual frame intervals (at least 400 ms): the
    /// sender paused this stream (a simulcast encoding it can no longer
    /// afford), or never sent it. A slow screen share (a frame a second)
    /// gets its four seconds.
    func silent(nowNs: Int64) -> Bool {
        lastArrivalNs == 0 || nowNs - lastArrivalNs > max(Self.minSilenceNs, 4 * frameIntervalNs)
    }

    /// Fraction lost since the previous call (RFC 3550 A.3), for an RR.
    mutating func intervalFractionLost() -> UInt8 {
        let expectedInterval = expected &- expectedPrior
        let receivedInterval = received &- receivedPrior
        expectedPrior = expected
        receivedPrior = received
        guard expectedInterval > 0, expectedInterval > receivedInterval else { lastFractionLost = 0; return 0 }
        lastFractionLost = UInt8(min(255, (expectedInterval - receivedInterval) << 8 / expectedInterval))
        return lastFractionLost
    }
}
