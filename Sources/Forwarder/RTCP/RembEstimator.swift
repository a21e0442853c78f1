/// A receive-side bandwidth estimate for endpoints that negotiated
/// "goog-remb" but not transport-wide congestion control: announced as
/// REMB about once a second so the sender's estimator is not starved.
///
/// It is rate based, not delay based: it offers headroom above what
/// arrives (so an encoder can ramp up by half its rate per second), backs
/// off multiplicatively under heavy loss, and never exceeds the transport's
/// `setMaxIncomingBitrate` cap. The sender's own loss-based controller (fed
/// by our receiver reports) still reacts to congestion in between.
///
/// A pure unit: counters and time come in, the bitrate to announce comes out.
package struct RembEstimator: Sendable {
    package static let intervalNs: Int64 = 1_000_000_000
    /// Floor of what is announced, and headroom added to the incoming rate.
    package static let minimumBitrate: UInt64 = 100_000
    package static let headroom: UInt64 = 150_000

    package var enabled = false
    package private(set) var estimate: UInt64 = 0
    private var lastBytes: UInt64 = 0
    private var lastNs: Int64 = 0

    package init() {}

    /// Called on the feedback timer with the transport's received bytes so
    /// far, the worst recent loss (fraction of 256) of its streams and the
    /// cap (0: none). Returns the bitrate to announce when one is due.
    package mutating func update(bytesReceived: UInt64, fractionLost: UInt8, cap: UInt64, nowNs: Int64) -> UInt64? {
        guard enabled else { return nil }
        guard lastNs != 0 else {
            lastNs = nowNs
            lastBytes = bytesReceived
            return nil
        }
        let elapsed = nowNs - lastNs
        guard elapsed >= Self.intervalNs else { return nil }
        let incoming = (bytesReceived &- lastBytes) &* 8 &* 1_000_000_000 / UInt64(elapsed)
        lastNs = nowNs
        lastBytes = bytesReceived
        var next: UInt64
        if fractionLost > 25 {
            // Over 10 % lost: back off below what currently gets through.
            next = incoming - incoming * UInt64(fractionLost) / 512
        } else if fractionLost > 5 {
            // 2-10 %: hold, without promising more than arrives plus headroom.
            next = min(estimate == 0 ? .max : estimate, incoming + incoming / 2 + Self.headroom)
        } else {
            next = incoming + incoming / 2 + Self.headroom
        }
        next = max(Self.minimumBitrate, next)
        if cap != 0 { next = min(next, cap) }
        estimate = next
        return next
    }
}
