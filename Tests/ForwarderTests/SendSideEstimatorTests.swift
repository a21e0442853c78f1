import Testing
@testable import RingSFUForwarder

/// A bottleneck on simulated time: a FIFO drained at `capacityBps`, tail
/// drop past 300 ms of queue (a router buffer sized for its link), then
/// `delayNs` of propagation.
struct SimulatedPath {
    var capacityBps: Int
    var delayNs: Int64 = 20_000_000
    var queueLimitMs: Int64 = 300
    /// Drops every n-th packet besides congestion (0: none).
    var lossEvery = 0
    private var busyUntilNs: Int64 = 0
    private var sent = 0

    init(capacityBps: Int, lossEvery: Int = 0) {
        self.capacityBps = capacityBps
        self.lossEvery = lossEvery
    }

    /// Arrival time of a packet sent at `nowNs`, nil when dropped.
    mutating func send(bytes: Int, nowNs: Int64) -> Int64? {
        sent += 1
        if lossEvery > 0, sent % lossEvery == 0 { return nil }
        guard busyUntilNs - nowNs <= queueLimitMs * 1_000_000 else { return nil }
        busyUntilNs = max(nowNs, busyUntilNs) + Int64(bytes) * 8_000_000_000 / Int64(capacityBps)
        return busyUntilNs + delayNs
    }

    func queueDelayMs(nowNs: Int64) -> Double { Double(max(0, busyUntilNs - nowNs)) / 1e6 }
}

/// A paced sender following the estimate over a path, with transport-wide
/// feedback every 50 ms (arrivals up to then, the gaps reported lost),
/// seen by the sender one propagation delay later.
struct Session {
    var path: SimulatedPath
    var estimator = SendSideEstimator()
    /// With `probing`, the allocation wants `wanted` bps and the sender
    /// sends the probe clusters the controller asks for.
    var probing = false
    var wanted = 10_000_000
    var controller = ProbeController()
    var nowNs: Int64 = 0
    var nextSendNs: Int64 = 0
    /// (send time, arrival time or nil, bytes, probe cluster) not yet reported.
    var inFlight: [(Int64, Int64?, Int, UInt8)] = []
    var nextFeedbackNs: Int64 = 50_000_000
    /// (time s, estimate kbps, queue delay ms) once a second.
    var curve: [(Double, Int, Double)] = []

    init(capacityBps: Int, lossEvery: Int = 0) {
        path = SimulatedPath(capacityBps: capacityBps, lossEvery: lossEvery)
    }

    /// Runs until `untilS` seconds; `at` changes the path at given times.
    mutating func run(untilS: Double, change: (Double, inout SimulatedPath) -> Void = { _, _ in }) {
        let end = Int64(untilS * 1e9)
        while nowNs < end {
            let stepNs: Int64 = 1_000_000
            change(Double(nowNs) / 1e9, &path)
            if probing, nowNs == 0, let (a, b) = controller.start(estimate: estimator.estimate, nowNs: nowNs) { sendProbe(a); sendProbe(b) }
            while nextSendNs <= nowNs {
                let bytes = 1200
                inFlight.append((nextSendNs, path.send(bytes: bytes, nowNs: nextSendNs), bytes, 0))
                nextSendNs += Int64(bytes * 8) * 1_000_000_000 / Int64(max(estimator.estimate, 10_000))
            }
            if nowNs >= nextFeedbackNs {
                // The receiver reports what arrived by (now - delay); the sender hears it now.
                let reportedUpTo = nowNs - path.delayNs
                var cut = 0
                for (i, p) in inFlight.enumerated() {
                    if let a = p.1, a <= reportedUpTo { cut = i + 1 }
                }
                inFlight[..<cut].sort { $0.0 < $1.0 } // sequence order is send order
                for p in inFlight[..<cut] { estimator.packet(sendNs: p.0, arrivalNs: p.1, bytes: p.2, cluster: p.3) }
                if cut > 0 {
                    estimator.feedbackDone(nowNs: nowNs)
                    if probing, let c = controller.update(estimate: estimator.estimate, wanted: wanted, nowNs: nowNs) { sendProbe(c) }
                }
                inFlight.removeFirst(cut)
                nextFeedbackNs += 50_000_000
            }
            if nowNs % 1_000_000_000 == 0 {
                curve.append((Double(nowNs) / 1e9, estimator.estimate / 1000, path.queueDelayMs(nowNs: nowNs)))
            }
            nowNs += stepNs
        }
    }

    /// A probe burst: padding-sized packets at the cluster's rate, beside the media.
    mutating func sendProbe(_ c: ProbeCluster) {
        let bytes = 1200
        let intervalNs = Int64(bytes * 8) * 1_000_000_000 / Int64(c.bitrate)
        let count = max(c.minPackets, Int((c.minDurationNs + intervalNs - 1) / intervalNs) + 1)
        for i in 0..<count {
            let at = nowNs + Int64(i) * intervalNs
            inFlight.append((at, path.send(bytes: bytes, nowNs: at), bytes, c.id))
            estimator.probeSent(cluster: c.id)
        }
    }

    func estimateKbps(at s: Double) -> Int { curve.last { $0.0 <= s }?.1 ?? 0 }
    func queueMs(at s: Double) -> Double { curve.last { $0.0 <= s }?.2 ?? 0 }
}

@Suite("Send-side bandwidth estimation")
struct SendSideEstimatorTests {
    @Test func rampsUpToTheBottleneckWithoutFillingItsQueue() {
        var s = Session(capacityBps: 2_000_000)
        s.run(untilS: 40)
        print("2 Mbps link:", s.curve.map { "\(Int($0.0))s \($0.1)k \(Int($0.2))ms" }.joined(separator: ", "))
        #expect(s.estimateKbps(at: 25) > 1200, "\(s.curve)")
        let late = s.curve.filter { $0.0 >= 25 }
        #expect(late.allSatisfy { $0.1 < 2600 }, "\(late)")
        #expect(late.map(\.2).reduce(0, +) / Double(late.count) < 150, "\(late)")
    }

    @Test func stepsDownWithinTwoSecondsOfACapacityDrop() {
        var s = Session(capacityBps: 4_000_000)
        s.run(untilS: 50) { t, path in path.capacityBps = t >= 30 ? 600_000 : 4_000_000 }
        print("4 Mbps -> 600 kbps at 30 s:", s.curve.map { "\(Int($0.0))s \($0.1)k \(Int($0.2))ms" }.joined(separator: ", "))
        #expect(s.estimateKbps(at: 29) > 2000, "\(s.curve)")
        #expect(s.estimateKbps(at: 32) < 800, "\(s.curve)")
        // Down to the new capacity, not to the floor.
        #expect(s.curve.filter { $0.0 >= 32 }.allSatisfy { $0.1 > 250 }, "\(s.curve)")
        #expect(s.queueMs(at: 35) < 150, "\(s.curve)")
    }

    @Test func recoversAfterTheCapacityReturns() {
        var s = Session(capacityBps: 4_000_000)
        s.run(untilS: 70) { t, path in path.capacityBps = (20..<30).contains(t) ? 600_000 : 4_000_000 }
        print("600 kbps from 20 to 30 s:", s.curve.map { "\(Int($0.0))s \($0.1)k" }.joined(separator: ", "))
        #expect(s.estimateKbps(at: 29) < 800)
        #expect(s.estimateKbps(at: 60) > 2000, "\(s.curve)")
    }

    @Test func probingFindsHeadroomQuickly() {
        var s = Session(capacityBps: 4_000_000)
        s.probing = true
        s.wanted = 3_500_000
        s.run(untilS: 60) { t, path in path.capacityBps = (20..<30).contains(t) ? 600_000 : 4_000_000 }
        print("with probing, 600 kbps from 20 to 30 s:", s.curve.map { "\(Int($0.0))s \($0.1)k \(Int($0.2))ms" }.joined(separator: ", "))
        // The start probes reach the wanted rate within seconds, not the ~30 s of 8 %/s.
        #expect(s.estimateKbps(at: 5) > 2500, "\(s.curve)")
        #expect(s.estimateKbps(at: 22) < 800, "\(s.curve)")
        // Back within 15 s of the recovery.
        #expect(s.estimateKbps(at: 45) > 2500, "\(s.curve)")
        #expect(s.queueMs(at: 50) < 150)
    }

    @Test func probeResultIsTheRateThatGotThrough() {
        var p = ProbeResultEstimator()
        for _ in 0..<6 { p.sent(cluster: 7) }
        // Sent 1 ms apart (9.6 Mbps), arriving 4 ms apart (2.4 Mbps): a bottleneck.
        var result: Int? = nil
        for i in 0..<6 { result = p.received(cluster: 7, sendNs: Int64(i) * 1_000_000, arrivalNs: 50_000_000 + Int64(i) * 4_000_000, bytes: 1200) ?? result }
        #expect(result.map { (2_300_000...2_500_000).contains($0) } == true, "\(String(describing: result))")
        // Too few arrived: no result.
        var q = ProbeResultEstimator()
        for _ in 0..<10 { q.sent(cluster: 3) }
        var none: Int? = nil
        for i in 0..<6 { none = q.received(cluster: 3, sendNs: Int64(i), arrivalNs: Int64(i) * 1000, bytes: 1200) ?? none }
        #expect(none == nil)
    }

    @Test func randomLossAboveTenPercentCutsTheRateAndLowLossDoesNot() {
        var lossy = Session(capacityBps: 10_000_000, lossEvery: 6) // 17 %
        lossy.run(untilS: 15)
        #expect(lossy.estimator.lossBased.lossFraction > 0.1)
        #expect(lossy.estimator.estimate < SendSideEstimator.defaultStart, "\(lossy.curve)")
        var clean = Session(capacityBps: 10_000_000, lossEvery: 100) // 1 %
        clean.run(untilS: 15)
        #expect(clean.estimator.estimate > 800_000, "\(clean.curve)")
        #expect(clean.estimator.lossBased.estimate >= clean.estimator.delayBased.estimate, "1 % loss must not limit the rate")
    }

    @Test func boundsApply() {
        var s = Session(capacityBps: 10_000_000)
        s.estimator.setBounds(min: 100_000, max: 800_000)
        s.run(untilS: 20)
        #expect(s.curve.allSatisfy { $0.1 <= 800 })
        #expect(s.estimator.estimate == 800_000)
        s.estimator.setBounds(min: 100_000, max: 400_000)
        #expect(s.estimator.estimate == 400_000)
    }

    @Test func trendlineCallsOveruseOnAGrowingQueueOnly() {
        var t = TrendlineEstimator()
        // Steady: groups every 20 ms, no delay growth.
        for i in 1...60 { t.update(sendDeltaMs: 20, arrivalDeltaMs: 20, arrivalNs: Int64(i) * 20_000_000) }
        #expect(t.state == .normal)
        // Each group arrives 2 ms later than sent: a filling queue.
        var state = BandwidthUsage.normal
        for i in 61...120 {
            t.update(sendDeltaMs: 20, arrivalDeltaMs: 22, arrivalNs: Int64(i) * 22_000_000)
            if t.state == .overusing { state = .overusing }
        }
        #expect(state == .overusing)
        // Draining: arrivals closer than sends.
        for i in 121...180 { t.update(sendDeltaMs: 20, arrivalDeltaMs: 15, arrivalNs: Int64(i) * 22_000_000) }
        #expect(t.state == .underusing)
    }

    @Test func interArrivalGroupsBursts() {
        var g = InterArrival()
        #expect(g.add(sendNs: 0, arrivalNs: 100) == nil)
        #expect(g.add(sendNs: 2_000_000, arrivalNs: 3_000_000) == nil) // same burst
        #expect(g.add(sendNs: 10_000_000, arrivalNs: 12_000_000) == nil) // second group starts
        let d = g.add(sendNs: 20_000_000, arrivalNs: 25_000_000)
        #expect(d?.sendDeltaMs == 8 && d?.arrivalDeltaMs == 9)
        #expect(g.add(sendNs: 1_000_000, arrivalNs: 30_000_000) == nil) // reordered: ignored
    }

    @Test func ackedBitrateOverHalfASecond() {
        var a = AckedBitrate()
        #expect(a.bitrate == nil)
        // 1250 bytes every 10 ms = 1 Mbps.
        for i in 0..<100 { a.add(bytes: 1250, arrivalNs: Int64(i) * 10_000_000) }
        let rate = a.bitrate ?? 0
        #expect((950_000...1_050_000).contains(rate), "\(rate)")
        // A late arrival older than the window is ignored.
        a.add(bytes: 1_000_000, arrivalNs: 0)
        #expect(a.bitrate == rate)
        // Arrival times before the receiver's reference (negative) do not trap.
        var b = AckedBitrate()
        for i in 0..<30 { b.add(bytes: 1250, arrivalNs: -400_000_000 + Int64(i) * 10_000_000) }
        #expect(b.bitrate != nil)
    }
}
