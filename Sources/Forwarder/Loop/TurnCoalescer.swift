/// Whether the loop's next wait lets completions gather (io_uring's minimum
/// wait of `windowMicroseconds`), decided every 100 ms from the packets that
/// arrived: only while at least one packet is due per window on average.
/// Gathering a lone packet per window costs a timer wakeup and saves
/// nothing (perf/RESULTS.md: +27 % CPU per packet without this rule). A
/// pure value: time and the packet count come in as parameters.
package struct TurnCoalescer: Sendable {
    package static let periodNs: Int64 = 100_000_000
    /// 0: never gather (turned off, or the kernel lacks the minimum wait).
    package let windowMicroseconds: UInt32
    package private(set) var gather = false
    private var periodStartNs: Int64
    private var periodPackets: UInt64

    package init(windowMicroseconds: UInt32, nowNs: Int64, packetsIn: UInt64) {
        self.windowMicroseconds = windowMicroseconds
        periodStartNs = nowNs
        periodPackets = packetsIn
    }

    /// A loop turn at `nowNs`, with the worker's running count of packets in.
    @inline(__always)
    package mutating func turn(nowNs: Int64, packetsIn: UInt64) {
        guard windowMicroseconds > 0, nowNs - periodStartNs >= Self.periodNs else { return }
        // rate x window >= 1 packet, in integers.
        let arrived = packetsIn &- periodPackets
        gather = arrived &* UInt64(windowMicroseconds) &* 1000 >= UInt64(nowNs - periodStartNs)
        periodStartNs = nowNs
        periodPackets = packetsIn
    }
}
