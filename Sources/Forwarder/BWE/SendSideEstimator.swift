/// Send-side bandwidth estimation for one transport: transport-wide
/// feedback (which packets arrived, and when) goes in packet by packet,
/// the available outgoing bitrate comes out after each feedback packet.
/// Delay-based detection (InterArrival + TrendlineEstimator + AIMD) and
/// loss-based control each propose a rate; the lower wins, within the
/// application's bounds (`setMaxOutgoingBitrate`/`setMinOutgoingBitrate`).
///
/// A pure value: all times are parameters (ns; arrival times are on the
/// receiver's clock, only their differences matter). Tests drive it with
/// scripted paths on simulated time.
package struct SendSideEstimator {
    package static let defaultStart = 300_000
    package static let defaultMin = 30_000
    package static let defaultMax = 30_000_000

    private var interArrival = InterArrival()
    package private(set) var trendline = TrendlineEstimator()
    package private(set) var delayBased: AimdRateControl
    package private(set) var lossBased: LossBasedControl
    private var acked = AckedBitrate()
    /// The same window over the reported packets by send time (lost ones
    /// too): what was sent, to tell a link-limited throughput from a
    /// sender-limited one.
    private var reported = AckedBitrate()
    private var probes = ProbeResultEstimator()
    /// The latest probe result (bps), for traces.
    package private(set) var lastProbeResult = 0
    /// The round trip, from the loop's receiver reports (ms).
    package var rttMs = 100.0
    package private(set) var estimate: Int

    package init(start: Int = Self.defaultStart, min: Int = Self.defaultMin, max: Int = Self.defaultMax) {
        delayBased = AimdRateControl(start: start, min: min, max: max)
        lossBased = LossBasedControl(start: start)
        estimate = delayBased.estimate
    }

    /// The application's bounds; a lower maximum applies at once.
    package mutating func setBounds(min: Int, max: Int) {
        delayBased.minBitrate = min
        delayBased.maxBitrate = Swift.max(min, max)
        estimate = Swift.min(Swift.max(estimate, min), delayBased.maxBitrate)
        delayBased.reset(to: Swift.min(delayBased.estimate, delayBased.maxBitrate))
    }

    /// One packet of a feedback, in sequence order: its send time and size
    /// from the send history, its arrival time or nil when reported lost.
    /// `cluster`: the probe cluster the packet belonged to (0: none).
    package mutating func packet(sendNs: Int64, arrivalNs: Int64?, bytes: Int, cluster: UInt8 = 0) {
        lossBased.packet(sendNs: sendNs, lost: arrivalNs == nil)
        reported.add(bytes: bytes, arrivalNs: sendNs)
        guard let arrivalNs else { return }
        if cluster != 0, let result = probes.received(cluster: cluster, sendNs: sendNs, arrivalNs: arrivalNs, bytes: bytes) {
            lastProbeResult = result
            // Headroom found: start from it instead of creeping up to it.
            if result > delayBased.estimate { delayBased.reset(to: result * 95 / 100) }
        }
        acked.add(bytes: bytes, arrivalNs: arrivalNs)
        if let d = interArrival.add(sendNs: sendNs, arrivalNs: arrivalNs) {
            trendline.update(sendDeltaMs: d.sendDeltaMs, arrivalDeltaMs: d.arrivalDeltaMs, arrivalNs: d.arrivalNs)
        }
    }

    /// The feedback packet is complete: the new estimate.
    @discardableResult
    package mutating func feedbackDone(nowNs: Int64) -> Int {
        let ackedRate = acked.bitrate
        let appLimited = ackedRate.map { a in reported.bitrate.map { Double(a) >= 0.9 * Double($0) } ?? false } ?? false
        let delay = delayBased.update(trendline.state, acked: ackedRate, rttMs: rttMs, nowNs: nowNs, appLimited: appLimited)
        let loss = lossBased.update(delayBased: delay, rttMs: rttMs, nowNs: nowNs)
        estimate = min(max(min(delay, loss), delayBased.minBitrate), delayBased.maxBitrate)
        return estimate
    }

    /// A probe packet of `cluster` was sent.
    package mutating func probeSent(cluster: UInt8) { probes.sent(cluster: cluster) }

    /// The receiver's acknowledged throughput (bps), nil while unknown.
    package var ackedBitrate: Int? { acked.bitrate }
}
