/// Probing: an estimate that follows the throughput only grows by a few
/// percent a second, so headroom is discovered by sending short bursts
/// (padding or RTX of recent packets) at a higher rate and measuring the
/// rate at which they arrive. Pure values on simulated time.

/// A burst to send: at `bitrate`, at least `minPackets` packets over at
/// least `minDurationNs`. Its packets carry `id` in the send history.
package struct ProbeCluster: Sendable, Equatable {
    package var id: UInt8
    package var bitrate: Int
    package var minPackets = 5
    package var minDurationNs: Int64 = 15_000_000
}

/// When to probe and how high: at the start (3x and 6x the start rate),
/// again at twice a successful probe's result while the allocation wants
/// more than the estimate (exponential search), and at most every 5 s
/// otherwise when the estimate stays below what consumers want.
package struct ProbeController {
    private var nextId: UInt8 = 1
    private var started = false
    private var lastProbeNs: Int64 = -1
    /// The rate a pending exponential step waits to exceed.
    private var awaitedBitrate = 0
    package var maxBitrate: Int

    package init(maxBitrate: Int = SendSideEstimator.defaultMax) { self.maxBitrate = maxBitrate }

    private mutating func cluster(_ bitrate: Int, nowNs: Int64) -> ProbeCluster {
        defer { nextId = nextId == 255 ? 1 : nextId + 1 }
        lastProbeNs = nowNs
        return ProbeCluster(id: nextId, bitrate: min(bitrate, maxBitrate))
    }

    /// The first probes, when media starts.
    package mutating func start(estimate: Int, nowNs: Int64) -> [ProbeCluster] {
        guard !started else { return [] }
        started = true
        awaitedBitrate = estimate * 6 * 7 / 10
        return [cluster(estimate * 3, nowNs: nowNs), cluster(estimate * 6, nowNs: nowNs)]
    }

    /// After an estimate update: a probe to send now, if any. `wanted`:
    /// what the allocation would use with more bitrate.
    package mutating func update(estimate: Int, wanted: Int, nowNs: Int64) -> ProbeCluster? {
        guard started, estimate < wanted, estimate < maxBitrate else {
            awaitedBitrate = 0
            return nil
        }
        // The last probe got through: search further at once.
        if awaitedBitrate > 0, estimate >= awaitedBitrate {
            awaitedBitrate = min(estimate * 2, wanted) * 7 / 10
            return cluster(min(estimate * 2, wanted * 2), nowNs: nowNs)
        }
        guard nowNs - lastProbeNs >= 5_000_000_000 else { return nil }
        awaitedBitrate = min(estimate * 2, wanted) * 7 / 10
        return cluster(min(estimate * 2, wanted * 2), nowNs: nowNs)
    }
}

/// The rate a probe cluster got through at: the lower of its send and
/// receive rates, once enough of it arrived (80 % of its packets, 5 at
/// least). Up to 4 clusters are followed at once.
package struct ProbeResultEstimator {
    struct Cluster {
        var id: UInt8 = 0
        var sent = 0
        var received = 0
        var bytes = 0
        var firstSendNs: Int64 = .max
        var lastSendNs: Int64 = .min
        var firstArrivalNs: Int64 = .max
        var lastArrivalNs: Int64 = .min
        var lastPacketBytes = 0
        var done = false
    }

    private var clusters = InlineArray<4, Cluster>(repeating: Cluster())
    private var next = 0

    package init() {}

    /// A probe packet was sent (counts the cluster's size).
    package mutating func sent(cluster id: UInt8) {
        let i = slot(id)
        clusters[i].sent += 1
    }

    /// A probe packet of the cluster was reported received. Returns the
    /// cluster's result (bps) the first time it is complete.
    package mutating func received(cluster id: UInt8, sendNs: Int64, arrivalNs: Int64, bytes: Int) -> Int? {
        let i = slot(id)
        var c = clusters[i]
        guard !c.done else { return nil }
        c.received += 1
        c.bytes += bytes
        c.firstSendNs = min(c.firstSendNs, sendNs)
        c.lastSendNs = max(c.lastSendNs, sendNs)
        if arrivalNs < c.firstArrivalNs { c.firstArrivalNs = arrivalNs }
        if arrivalNs >= c.lastArrivalNs { c.lastArrivalNs = arrivalNs; c.lastPacketBytes = bytes }
        clusters[i] = c
        guard c.received >= 5, c.received * 10 >= c.sent * 8, c.lastSendNs > c.firstSendNs, c.lastArrivalNs > c.firstArrivalNs else { return nil }
        clusters[i].done = true
        // Rates over the gaps between packets: the last packet's bytes
        // arrived after the span the first packet opened.
        let sendRate = Double(c.bytes - c.lastPacketBytes) * 8e9 / Double(c.lastSendNs - c.firstSendNs)
        let receiveRate = Double(c.bytes - c.lastPacketBytes) * 8e9 / Double(c.lastArrivalNs - c.firstArrivalNs)
        return Int(min(sendRate, receiveRate))
    }

    private mutating func slot(_ id: UInt8) -> Int {
        for i in 0..<4 where clusters[i].id == id { return i }
        let i = next
        next = (next + 1) % 4
        clusters[i] = Cluster(id: id)
        return i
    }
}
