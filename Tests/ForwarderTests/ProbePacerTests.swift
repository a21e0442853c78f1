import Testing
@testable import RingSFUForwarder

/// Probe clusters spread over their duration on simulated 5 ms ticks: the
/// send rate is the cluster's bitrate, not one burst.
@Suite("Probe pacer")
struct ProbePacerTests {
    static let ms: Int64 = 1_000_000
    static let packet = 268

    /// Runs the pacer on 5 ms ticks; returns (tick time, packets) per tick.
    static func run(_ pacer: inout ProbePacer, from start: Int64 = 0, ticks: Int = 20) -> [(Int64, Int)] {
        var sent: [(Int64, Int)] = []
        for k in 0..<ticks {
            let now = start + Int64(k) * 5 * ms
            let n = pacer.due(nowNs: now, packetBytes: packet)
            pacer.sent(packets: n, bytes: n * packet, nowNs: now)
            if n > 0 { sent.append((now, n)) }
        }
        return sent
    }

    @Test func aClusterGoesOutAtItsRateOverItsDuration() {
        var pacer = ProbePacer()
        pacer.add(ProbeCluster(id: 1, bitrate: 4_000_000), nowNs: 0)
        let sent = Self.run(&pacer)
        let packets = sent.reduce(0) { $0 + $1.1 }
        // 4 Mbps for 15 ms: 7500 bytes, 28 packets of 268.
        #expect(packets == 28)
        #expect(sent.count == 3, "three ticks: \(sent)")
        #expect(sent.last!.0 == 10 * Self.ms)
        // The send rate measured from first to last tick is the cluster's.
        let rate = Double((packets - sent.last!.1) * Self.packet * 8) / (Double(sent.last!.0 - sent.first!.0) / 1e9)
        #expect(abs(rate - 4_000_000) / 4_000_000 < 0.3, "\(rate)")
        #expect(!pacer.active)
    }

    @Test func aSlowClusterStillSendsItsMinimumPacketCount() {
        var pacer = ProbePacer()
        var cluster = ProbeCluster(id: 1, bitrate: 100_000)
        cluster.minDurationNs = 15 * Self.ms
        pacer.add(cluster, nowNs: 0)
        let packets = Self.run(&pacer).reduce(0) { $0 + $1.1 }
        #expect(packets == 5)
        #expect(!pacer.active)
    }

    @Test func aLowRateClusterLastsLongEnoughToCarrySixKilobytes() {
        var pacer = ProbePacer()
        pacer.add(ProbeCluster(id: 1, bitrate: 1_200_000), nowNs: 0)
        let sent = Self.run(&pacer)
        let bytes = sent.reduce(0) { $0 + $1.1 } * Self.packet
        #expect(bytes >= ProbeCluster.minBytes && bytes < ProbeCluster.minBytes + Self.packet)
        // 40 ms at 1.2 Mbps: the last tick starts 35 ms in.
        #expect(sent.last!.0 == 35 * Self.ms, "\(sent)")
    }

    @Test func queuedClustersFollowInOrderAndAThirdWaitsNoMore() {
        var pacer = ProbePacer()
        pacer.add(ProbeCluster(id: 1, bitrate: 900_000), nowNs: 0)
        pacer.add(ProbeCluster(id: 2, bitrate: 1_800_000), nowNs: 0)
        pacer.add(ProbeCluster(id: 3, bitrate: 3_600_000), nowNs: 0)
        pacer.add(ProbeCluster(id: 4, bitrate: 7_200_000), nowNs: 0)
        var order: [UInt8] = []
        for k in 0..<40 {
            let now = Int64(k) * 5 * Self.ms
            guard let c = pacer.current else { break }
            if order.last != c.id { order.append(c.id) }
            let n = pacer.due(nowNs: now, packetBytes: Self.packet)
            pacer.sent(packets: n, bytes: n * Self.packet, nowNs: now)
        }
        #expect(order == [1, 2, 3])
        pacer.add(ProbeCluster(id: 5, bitrate: 1_000_000), nowNs: 0)
        pacer.cancel()
        #expect(!pacer.active)
    }
}

/// The probe planner's exponential search ends when a probe does not lift
/// the estimate, however close the estimate is to what is wanted.
@Suite("Probe controller")
struct ProbeControllerTests {
    let s: Int64 = 1_000_000_000

    @Test func theSearchStopsWhenAProbeLiftsNothing() {
        var c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 300_000, nowNs: 0)
        // The start probes lifted the estimate to 1.5 Mbps (>= 70 % of 1.8):
        // search on, as high as 6x the estimate allows.
        let next = c.update(estimate: 1_500_000, wanted: 20_000_000, nowNs: s / 10)
        #expect(next?.bitrate == 9_000_000)
        // Near what is wanted (19 of 20 Mbps) and not lifted: nothing until 5 s later.
        var probes = 0
        var now = s / 5
        c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 19_000_000, nowNs: 0)
        while now < 10 * s {
            if c.update(estimate: 19_000_000, wanted: 20_000_000, nowNs: now) != nil { probes += 1 }
            now += s / 20
        }
        #expect(probes == 1, "one, 5 s after the start probes: \(probes)")
    }

    @Test func aProbeAimsAboveWhatIsWantedWithinSixTimesTheEstimate() {
        var c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 300_000, nowNs: 0)
        // A consumer wants 3.4 Mbps (its layer with the upgrade margin): one
        // probe at 4.25 Mbps can find it, rather than three doublings.
        #expect(c.update(estimate: 1_000_000, wanted: 3_400_000, nowNs: 6 * s)?.bitrate == 4_250_000)
        // From 600 kbps: no more than 6x the estimate (the burst's queue on a link that small).
        c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 300_000, nowNs: 0)
        #expect(c.update(estimate: 600_000, wanted: 3_400_000, nowNs: 6 * s)?.bitrate == 3_600_000)
        // Close to what is wanted: still twice the estimate.
        c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 300_000, nowNs: 0)
        #expect(c.update(estimate: 3_000_000, wanted: 3_400_000, nowNs: 6 * s)?.bitrate == 6_000_000)
    }

    @Test func aSearchStepThatLiftedNothingIsTriedOnceMoreASecondLater() {
        var c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 300_000, nowNs: 0)
        // The start probes got through: a search step at once.
        #expect(c.update(estimate: 1_500_000, wanted: 3_400_000, nowNs: s / 10) != nil)
        // It lifted nothing (a stalled host spoils a 15 ms cluster): once
        // more after a second, then back to every 5 s.
        var sent: [Int64] = []
        var now = s / 10 + s / 20
        while now < 12 * s {
            if c.update(estimate: 1_500_000, wanted: 3_400_000, nowNs: now) != nil { sent.append(now) }
            now += s / 20
        }
        #expect(sent.count == 3, "\(sent)")
        #expect(sent.first.map { $0 >= s / 10 + s && $0 < s / 10 + s + s / 10 } == true, "\(sent)")
        #expect(zip(sent.dropFirst(), sent).allSatisfy { $0 - $1 >= 5 * s }, "\(sent)")
        // A periodic probe that lifts nothing is not retried early.
        c = ProbeController(maxBitrate: 30_000_000)
        _ = c.start(estimate: 1_000_000, nowNs: 0)
        var probes = 0
        now = s / 10
        while now < 9 * s {
            if c.update(estimate: 1_000_000, wanted: 3_400_000, nowNs: now) != nil { probes += 1 }
            now += s / 20
        }
        #expect(probes == 1, "one at 5 s, nothing at 6 s: \(probes)")
    }
}
