/// Delay-based congestion detection of send-side estimation (the GCC
/// drafts, draft-ietf-rmcat-gcc): packets are grouped by send time, the
/// growth of one-way delay between groups is accumulated and smoothed, and
/// the slope of that curve (its trend) is compared with an adaptive
/// threshold. A growing queue on the path shows as a positive trend before
/// packets are lost.
///
/// Pure values: times come in as parameters (nanoseconds), nothing is
/// allocated, memory is fixed.

/// What the delay trend says about the path.
package enum BandwidthUsage: UInt8, Sendable {
    case normal, underusing, overusing
}

/// Groups packets sent within 5 ms (a burst leaves the sender together and
/// is judged together) and yields the send and arrival spacing of
/// consecutive groups.
package struct InterArrival {
    package static let burstNs: Int64 = 5_000_000

    struct Group {
        var firstSendNs: Int64 = 0
        var lastSendNs: Int64 = 0
        var lastArrivalNs: Int64 = 0
        var valid = false
    }

    private var current = Group()
    private var previous = Group()

    package init() {}

    /// Adds a received packet (in transport-wide sequence order). Returns
    /// the deltas between the two latest complete groups when a group
    /// completes; reordered packets (sent before the current group) are
    /// ignored.
    package mutating func add(sendNs: Int64, arrivalNs: Int64) -> (sendDeltaMs: Double, arrivalDeltaMs: Double, arrivalNs: Int64)? {
        guard current.valid else {
            current = Group(firstSendNs: sendNs, lastSendNs: sendNs, lastArrivalNs: arrivalNs, valid: true)
            return nil
        }
        if sendNs < current.firstSendNs { return nil }
        if sendNs - current.firstSendNs <= Self.burstNs {
            current.lastSendNs = max(current.lastSendNs, sendNs)
            current.lastArrivalNs = max(current.lastArrivalNs, arrivalNs)
            return nil
        }
        var out: (Double, Double, Int64)? = nil
        if previous.valid {
            out = (Double(current.lastSendNs - previous.lastSendNs) / 1e6, Double(current.lastArrivalNs - previous.lastArrivalNs) / 1e6, current.lastArrivalNs)
        }
        previous = current
        current = Group(firstSendNs: sendNs, lastSendNs: sendNs, lastArrivalNs: arrivalNs, valid: true)
        return out
    }
}

/// The trend of the smoothed accumulated delay over the last 20 group
/// deltas (least-squares slope), against a threshold that adapts to the
/// path's jitter: slowly up when the trend is above it, faster down.
package struct TrendlineEstimator {
    package static let window = 20
    static let smoothing = 0.9
    static let gain = 4.0
    static let thresholdUp = 0.0087
    static let thresholdDown = 0.039
    /// Overuse must last this long (ms of send time) before it is called.
    static let overuseTimeMs = 10.0

    private var xs = InlineArray<20, Double>(repeating: 0)
    private var ys = InlineArray<20, Double>(repeating: 0)
    private var head = 0
    private var filled = 0
    /// Receiver-clock times may be negative: "unset" is a flag, not a value.
    private var firstArrivalNs: Int64? = nil
    private var accumulatedDelayMs = 0.0
    private var smoothedDelayMs = 0.0
    private var deltas = 0
    private var previousTrend = 0.0
    private var overuseMs = -1.0
    private var overuseCount = 0
    private var lastThresholdNs: Int64? = nil
    /// The adaptive threshold, in ms of modified trend.
    package private(set) var threshold = 12.5
    package private(set) var state = BandwidthUsage.normal
    /// The latest modified trend (for traces).
    package private(set) var modifiedTrend = 0.0

    package init() {}

    package mutating func update(sendDeltaMs: Double, arrivalDeltaMs: Double, arrivalNs: Int64) {
        deltas = min(deltas + 1, 1000)
        accumulatedDelayMs += arrivalDeltaMs - sendDeltaMs
        smoothedDelayMs = Self.smoothing * smoothedDelayMs + (1 - Self.smoothing) * accumulatedDelayMs
        let first = firstArrivalNs ?? arrivalNs
        firstArrivalNs = first
        xs[head] = Double(arrivalNs - first) / 1e6
        ys[head] = smoothedDelayMs
        head = (head + 1) % Self.window
        filled = min(filled + 1, Self.window)
        var trend = previousTrend
        if filled == Self.window, let slope = slope() { trend = slope }
        detect(trend: trend, sendDeltaMs: sendDeltaMs, nowNs: arrivalNs)
    }

    /// Least-squares slope of delay over arrival time.
    private func slope() -> Double? {
        var sx = 0.0, sy = 0.0
        for i in 0..<Self.window { sx += xs[i]; sy += ys[i] }
        let mx = sx / Double(Self.window), my = sy / Double(Self.window)
        var num = 0.0, den = 0.0
        for i in 0..<Self.window {
            num += (xs[i] - mx) * (ys[i] - my)
            den += (xs[i] - mx) * (xs[i] - mx)
        }
        return den > 0 ? num / den : nil
    }

    private mutating func detect(trend: Double, sendDeltaMs: Double, nowNs: Int64) {
        let modified = Double(min(deltas, 60)) * trend * Self.gain
        modifiedTrend = modified
        if modified > threshold {
            overuseMs = overuseMs < 0 ? sendDeltaMs / 2 : overuseMs + sendDeltaMs
            overuseCount += 1
            if overuseMs > Self.overuseTimeMs, overuseCount > 1, trend >= previousTrend {
                overuseMs = 0
                overuseCount = 0
                state = .overusing
            }
        } else if modified < -threshold {
            overuseMs = -1
            overuseCount = 0
            state = .underusing
        } else {
            overuseMs = -1
            overuseCount = 0
            state = .normal
        }
        previousTrend = trend
        adaptThreshold(modified, nowNs: nowNs)
    }

    private mutating func adaptThreshold(_ modified: Double, nowNs: Int64) {
        let last = lastThresholdNs ?? nowNs
        // A spike far above the threshold (a route change, a paused
        // sender) must not drag the threshold up with it.
        if abs(modified) > threshold + 15 {
            lastThresholdNs = nowNs
            return
        }
        let k = abs(modified) < threshold ? Self.thresholdDown : Self.thresholdUp
        let dtMs = min(max(Double(nowNs - last) / 1e6, 0), 100)
        threshold += k * (abs(modified) - threshold) * dtMs
        threshold = min(max(threshold, 6), 600)
        lastThresholdNs = nowNs
    }
}
