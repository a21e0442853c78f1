/// When key frames held back for an overrun link may be asked for: once
/// what was sent before and is not yet reported by the transport-wide
/// feedback would leave the link's queue within `drainedMs` at the
/// estimate, or at the latest `maxWaitNs` after the first wait began.
/// Asked for at once, such a key frame meets the still-full queue and is
/// lost there (doc/bwe.md). A pure value: time comes in as a parameter.
package struct DrainGate: Sendable {
    package static let drainedMs = 100
    package static let maxWaitNs: Int64 = 1_500_000_000

    /// Consumers waiting, and the deadline of the current wait.
    package private(set) var waiting: Int32 = 0
    package private(set) var deadlineNs: Int64 = 0

    package init() {}

    /// One more consumer waits. Returns the deadline when a new wait
    /// begins (for the caller's timer), nil when one is already running.
    package mutating func wait(nowNs: Int64) -> Int64? {
        waiting += 1
        guard waiting == 1 else { return nil }
        deadlineNs = nowNs + Self.maxWaitNs
        return deadlineNs
    }

    /// Whether the waiting consumers' key frames are due now (then the
    /// wait ends): after a feedback, or with `force` at the deadline.
    package mutating func release(nowNs: Int64, bytesInFlight: Int, estimate: Int, force: Bool = false) -> Bool {
        guard waiting > 0 else { return false }
        let drained = bytesInFlight * 8 * 1000 / max(1, estimate) < Self.drainedMs
        guard force || drained || nowNs >= deadlineNs else { return false }
        waiting = 0
        return true
    }
}
