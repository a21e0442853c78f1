/// The rate controls of send-side estimation (draft-ietf-rmcat-gcc): the
/// delay-based AIMD controller driven by the trend detector, and the
/// loss-based controller driven by the loss the feedback reports. Pure
/// values on bits per second; time comes in as nanoseconds.

/// Additive-increase, multiplicative-decrease on the detector's verdict:
/// overuse cuts the rate to 85 % of what the receiver acknowledged;
/// normal raises it, by 8 % a second while the link's capacity is unknown
/// and by about a packet per response time near it; underuse holds it
/// (the queue drains).
package struct AimdRateControl {
    package enum State: UInt8, Sendable { case hold, increase, decrease }
    static let beta = 0.85

    package private(set) var estimate: Int
    package private(set) var state = State.hold
    package var minBitrate: Int
    package var maxBitrate: Int
    private var lastChangeNs: Int64 = -1
    private var lastDecreaseNs: Int64 = -1
    /// Acknowledged rate at past overuses (the link's capacity): mean and
    /// normalised variance, in kbps; negative mean when unknown.
    private var capacityKbps = -1.0
    private var capacityVariance = 0.4

    package init(start: Int, min: Int, max: Int) {
        estimate = Swift.min(Swift.max(start, min), max)
        minBitrate = min
        maxBitrate = max
    }

    /// The new delay-based estimate after a feedback. `acked`: the
    /// receiver's recent throughput (nil while unknown); `rttMs`: the
    /// path's round trip; `appLimited`: the receiver got about all that was
    /// sent, so its throughput says how much the sender sent, not what the
    /// link carries (a decrease then starts from the estimate).
    package mutating func update(_ usage: BandwidthUsage, acked: Int?, rttMs: Double, nowNs: Int64, appLimited: Bool = false) -> Int {
        if lastChangeNs < 0 { lastChangeNs = nowNs }
        switch usage {
        case .normal: if state == .hold { state = .increase; lastChangeNs = nowNs }
        case .overusing: state = timeToReduceFurther(acked: acked, rttMs: rttMs, nowNs: nowNs) ? .decrease : .hold
        case .underusing: state = .hold
        }
        let dtS = min(Double(nowNs - lastChangeNs) / 1e9, 1.0)
        switch state {
        case .hold:
            break
        case .increase:
            // Do not run far ahead of what actually gets through.
            if let acked, Double(estimate) > 1.5 * Double(acked) + 10_000 { break }
            if let acked, capacityKbps > 0, Double(acked) / 1000 > capacityKbps + 3 * deviationKbps {
                capacityKbps = -1 // the link got faster: search again
            }
            if capacityKbps > 0 {
                // Near capacity: about one 1200-byte packet per response time.
                let responseS = (rttMs + 100) / 1000
                estimate += max(1000, Int(1200 * 8 * dtS / responseS))
            } else {
                estimate += max(1000, Int(Double(estimate) * (pow108(dtS) - 1)))
            }
            lastChangeNs = nowNs
        case .decrease:
            // What got through is the link's rate only when the sender sent
            // more than that; a sender that paused (a consumer waiting for a
            // lower layer's key frame) would otherwise cut to nearly nothing.
            let linkRate = appLimited ? nil : acked
            var next = Int(Self.beta * Double(linkRate ?? estimate))
            if next > estimate { next = Int(Self.beta * Double(estimate)) }
            if let linkRate { learnCapacity(Double(linkRate) / 1000) }
            estimate = next
            state = .hold
            lastChangeNs = nowNs
            lastDecreaseNs = nowNs
        }
        estimate = min(max(estimate, minBitrate), maxBitrate)
        return estimate
    }

    /// The detector keeps saying "overusing" while the queue built before
    /// a decrease drains (about a second). Within that time cut again only
    /// a round trip later, and only if the receiver still gets clearly
    /// less than is sent: otherwise the rate would collapse far below the
    /// path's capacity. Later overuse is a new episode.
    private func timeToReduceFurther(acked: Int?, rttMs: Double, nowNs: Int64) -> Bool {
        guard lastDecreaseNs >= 0 else { return true }
        let sinceNs = nowNs - lastDecreaseNs
        guard sinceNs >= Int64(min(max(rttMs, 10), 200) * 1e6) else { return false }
        guard sinceNs < 1_000_000_000, let acked else { return true }
        return Double(acked) < 0.95 * Double(estimate)
    }

    private var deviationKbps: Double { (capacityVariance * max(capacityKbps, 1)).squareRoot() }

    private mutating func learnCapacity(_ kbps: Double) {
        if capacityKbps < 0 { capacityKbps = kbps; return }
        // Far below the known capacity: the path changed, start over.
        if kbps < capacityKbps - 3 * deviationKbps { capacityKbps = kbps; capacityVariance = 0.4; return }
        let alpha = 0.05
        capacityKbps = (1 - alpha) * capacityKbps + alpha * kbps
        let err = (capacityKbps - kbps) / max(capacityKbps, 1)
        capacityVariance = min(max((1 - alpha) * capacityVariance + alpha * err * err * capacityKbps, 0.4), 2.5)
    }

    /// 1.08 ** s for s in 0...1 (e^x to the cubic term: x <= 0.077, error < 1e-6).
    private func pow108(_ s: Double) -> Double {
        let x = 0.0769610411 * s
        return 1 + x + x * x / 2 + x * x * x / 6
    }

    /// Starts from `bitrate` (a probe's result, the application's cap).
    package mutating func reset(to bitrate: Int) {
        estimate = min(max(bitrate, minBitrate), maxBitrate)
    }
}

/// Loss-based control: over 10 % loss the rate drops by half the loss
/// fraction; under 2 % it follows the delay-based estimate; in between it
/// holds. Loss is judged over at least 20 packets, and only over packets
/// sent after the last decrease: the ones already queued when the rate was
/// cut are lost all the same and must not cut it again.
package struct LossBasedControl {
    package private(set) var estimate: Int
    private var lost = 0
    private var total = 0
    private var lastDecreaseNs: Int64 = -1_000_000_000
    package private(set) var lossFraction = 0.0

    package init(start: Int) { estimate = start }

    /// `rttMs`: decreases are at least 300 ms + one round trip apart, so
    /// the effect of one shows in the loss before the next.
    /// A reported packet, sent at `sendNs` (the sender's clock).
    package mutating func packet(sendNs: Int64, lost wasLost: Bool) {
        guard sendNs >= lastDecreaseNs else { return }
        total += 1
        if wasLost { lost += 1 }
    }

    package mutating func update(delayBased: Int, rttMs: Double = 100, nowNs: Int64) -> Int {
        guard total >= 20 else {
            estimate = lossFraction < 0.02 ? delayBased : min(estimate, delayBased)
            return estimate
        }
        lossFraction = Double(lost) / Double(total)
        lost = 0
        total = 0
        if lossFraction > 0.10 {
            if nowNs - lastDecreaseNs >= 300_000_000 + Int64(rttMs * 1e6) {
                estimate = Int(Double(min(estimate, delayBased)) * (1 - 0.5 * lossFraction))
                lastDecreaseNs = nowNs
            }
        } else if lossFraction < 0.02 {
            estimate = delayBased
        } else {
            estimate = min(estimate, delayBased)
        }
        return estimate
    }
}

/// The receiver's throughput: bytes acknowledged over the last 500 ms of
/// arrival time, in 10 ms bins (fixed memory whatever the rate).
package struct AckedBitrate {
    static let bins = 50
    static let binNs: Int64 = 10_000_000
    private var bytes = InlineArray<50, Int>(repeating: 0)
    private var newestBin: Int64 = 0
    private var firstBin: Int64 = 0
    private var started = false

    package init() {}

    package mutating func add(bytes n: Int, arrivalNs: Int64) {
        let bin = arrivalNs / Self.binNs
        if !started {
            started = true
            newestBin = bin
            firstBin = bin
        }
        if bin > newestBin {
            // Clear the bins the window moved past.
            // (A while loop: iterating a ClosedRange<Int64> allocates in debug builds.)
            let steps = min(bin - newestBin, Int64(Self.bins))
            var i: Int64 = 1
            while i <= steps {
                bytes[Self.slot(newestBin + i)] = 0
                i += 1
            }
            newestBin = bin
        }
        guard newestBin - bin < Int64(Self.bins) else { return } // older than the window
        bytes[Self.slot(bin)] += n
    }

    /// A bin's slot; arrival times from feedback may be negative.
    private static func slot(_ bin: Int64) -> Int {
        let m = bin % Int64(bins)
        return Int(m < 0 ? m + Int64(bins) : m)
    }

    /// Bits per second over the window; nil until 100 ms of arrivals.
    package var bitrate: Int? {
        guard started, newestBin - firstBin >= 10 else { return nil }
        let span = min(newestBin - firstBin + 1, Int64(Self.bins))
        var sum = 0
        for i in 0..<Self.bins { sum += bytes[i] }
        return Int(Double(sum * 8) / (Double(span) * Double(Self.binNs) / 1e9))
    }
}
