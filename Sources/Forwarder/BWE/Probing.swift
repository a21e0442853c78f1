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

    /// A cluster lasts 15 ms, longer at low rates so that it carries at
    /// least 6 KB: a shorter burst fits in a shaper's bucket or a queue's
    /// spare room and arrives as fast as it left, whatever the link rate.
    package static let minBytes = 6000

    package init(id: UInt8, bitrate: Int) {
        self.id = id
        self.bitrate = bitrate
        minDurationNs = max(15_000_000, Int64(Double(Self.minBytes) * 8e9 / Double(max(bitrate, 1))))
    }
}

/// When to probe and how high: at the start (3x and 6x the start rate),
/// again at once when a probe lifted the estimate while the allocation
/// still wants more (the search goes on), and at most every 5 s otherwise
/// when the estimate stays below what consumers want. A search step that
/// lifted nothing is tried once more a second later: one cluster is 15 ms,
/// and a loop or a path that stalls that long (a busy host) spoils it.
///
/// A probe aims at what the consumers want with a quarter more (so that
/// one probe can be enough: every step is a chance to fail), but no higher
/// than 6x the estimate, so that its burst queues at most ~90 ms on a link
/// that carries only the estimate, and at least at 2x the estimate.
package struct ProbeController {
    private var nextId: UInt8 = 1
    private var started = false
    private var lastProbeNs: Int64 = -1
    /// The rate a pending search step waits to exceed.
    private var awaitedBitrate = 0
    /// The last probe was a search step, and it may be tried again once.
    private var retryable = false
    package var maxBitrate: Int

    package init(maxBitrate: Int = SendSideEstimator.defaultMax) { self.maxBitrate = maxBitrate }

    private mutating func cluster(_ bitrate: Int, nowNs: Int64) -> ProbeCluster {
        defer { nextId = nextId == 255 ? 1 : nextId + 1 }
        lastProbeNs = nowNs
        return ProbeCluster(id: nextId, bitrate: min(bitrate, maxBitrate))
    }

    /// The first probes, when media starts (a pair, not an array: this
    /// runs on the forwarder thread, which does not allocate).
    package mutating func start(estimate: Int, nowNs: Int64) -> (ProbeCluster, ProbeCluster)? {
        guard !started else { return nil }
        started = true
        let pair = (cluster(estimate * 3, nowNs: nowNs), cluster(estimate * 6, nowNs: nowNs))
        awaitedBitrate = max(pair.1.bitrate * 7 / 10, estimate + 1)
        return pair
    }

    /// After an estimate update: a probe to send now, if any. `wanted`:
    /// what the allocation would use with more bitrate.
    package mutating func update(estimate: Int, wanted: Int, nowNs: Int64) -> ProbeCluster? {
        guard started, estimate < wanted, estimate < maxBitrate else {
            awaitedBitrate = 0
            retryable = false
            return nil
        }
        // The last probe got through: search further at once.
        let further = awaitedBitrate > 0 && estimate >= awaitedBitrate
        let retry = retryable && nowNs - lastProbeNs >= 1_000_000_000
        guard further || retry || nowNs - lastProbeNs >= 5_000_000_000 else { return nil }
        retryable = further
        let target = min(max(estimate * 2, wanted + wanted / 4), estimate * 6, wanted * 2)
        let c = cluster(target, nowNs: nowNs)
        // Searching further needs this probe to lift the estimate to 70 %
        // of its rate, and above where it is now: otherwise (a target near
        // what is wanted, or capped) the search would never end.
        awaitedBitrate = max(c.bitrate * 7 / 10, estimate + 1)
        return c
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

/// Spreads probe clusters over time: the loop asks on each timer tick how
/// many bytes are due (the cluster's rate times the time since it began,
/// one tick ahead), so a cluster's send rate is its bitrate rather than
/// one burst. Up to two clusters wait behind the one being sent.
package struct ProbePacer {
    /// How far ahead of the elapsed time a tick sends (the loop's timer tick).
    package static let sliceNs: Int64 = 5_000_000

    package private(set) var current: ProbeCluster?
    /// Two plain fields, not an InlineArray of optionals: its generic
    /// accessors instantiate metadata (allocate) on first use in debug builds.
    private var queued0: ProbeCluster?
    private var queued1: ProbeCluster?
    private var startNs: Int64 = 0
    private var sentBytes = 0
    private var sentPackets = 0

    package init() {}

    /// Queues a cluster (dropped when two already wait).
    package mutating func add(_ cluster: ProbeCluster, nowNs: Int64) {
        if current == nil {
            begin(cluster, nowNs: nowNs)
        } else if queued0 == nil {
            queued0 = cluster
        } else if queued1 == nil {
            queued1 = cluster
        }
    }

    private mutating func begin(_ cluster: ProbeCluster, nowNs: Int64) {
        current = cluster
        startNs = nowNs
        sentBytes = 0
        sentPackets = 0
    }

    /// Packets of `packetBytes` due now for the current cluster (0: none).
    package func due(nowNs: Int64, packetBytes: Int) -> Int {
        guard let c = current, packetBytes > 0 else { return 0 }
        let horizon = min(max(0, nowNs - startNs) + Self.sliceNs, c.minDurationNs)
        let bytes = Int(Double(c.bitrate) * Double(horizon) / 8e9) - sentBytes
        let byRate = max(0, (bytes + packetBytes - 1) / packetBytes)
        // The cluster's minimum packet count goes out by its end.
        let byCount = horizon >= c.minDurationNs ? max(0, c.minPackets - sentPackets) : 0
        return min(max(byRate, byCount), 64)
    }

    /// Packets of the current cluster went out; moves to the next cluster
    /// when this one is complete.
    package mutating func sent(packets: Int, bytes: Int, nowNs: Int64) {
        guard let c = current else { return }
        sentPackets += packets
        sentBytes += bytes
        let total = Int(Double(c.bitrate) * Double(c.minDurationNs) / 8e9)
        guard nowNs - startNs + Self.sliceNs >= c.minDurationNs, sentBytes >= total, sentPackets >= c.minPackets else { return }
        current = nil
        if let next = queued0 {
            queued0 = queued1
            queued1 = nil
            begin(next, nowNs: nowNs)
        }
    }

    /// Whether a cluster is being sent or waits.
    package var active: Bool { current != nil }

    /// Drops everything (the transport stopped estimating or has nothing to pad).
    package mutating func cancel() {
        current = nil
        queued0 = nil
        queued1 = nil
    }
}
