import RingSFUForwarder

/// Send-side estimation under arbitrary feedback: reordered, lost, late,
/// duplicated packets, probe results and bound changes. The estimate stays
/// within the bounds, the probe results and the layer allocation stay sane.
func sendSideEstimator(_ p: UnsafeMutableRawPointer, _ count: Int) {
    var e = SendSideEstimator()
    var minRate = SendSideEstimator.defaultMin, maxRate = SendSideEstimator.defaultMax
    var now: Int64 = 0
    var send: Int64 = 0
    // Arrays: the harness may allocate, the units under test do not.
    var entries = [AllocationEntry](repeating: AllocationEntry(), count: 3)
    var order = [Int32](repeating: 0, count: 3)
    operations(p, count) { op, arg in
        now += Int64(arg) * 1_000_000
        switch op % 5 {
        case 0, 1:
            // A packet: send time moving mostly forward, arrival jittered or lost.
            send += Int64(op >> 3) * 500_000 - (op & 0x4 != 0 ? 2_000_000 : 0)
            let arrival: Int64? = op & 0x2 != 0 ? nil : send + Int64(arg) * 250_000
            e.packet(sendNs: send, arrivalNs: arrival, bytes: Int(arg) * 8, cluster: op & 0x1 != 0 ? UInt8(arg % 4) : 0)
        case 2:
            if op & 0x80 != 0 { e.probeSent(cluster: arg % 4) }
            let estimate = e.feedbackDone(nowNs: now)
            promise(estimate >= minRate && estimate <= maxRate, "estimate within the bounds")
        case 3:
            minRate = 10_000 + Int(arg) * 1000
            maxRate = minRate + Int(op) * 20_000
            e.setBounds(min: minRate, max: maxRate)
            promise(e.estimate >= minRate && e.estimate <= maxRate, "estimate within new bounds")
        default:
            let k = Int(arg % 3)
            entries[k].priority = max(1, op)
            entries[k].layerCount = Int(arg % 5)
            for l in 0..<4 { entries[k].layerBitrates[l] = Int(arg) * (l + 1) * 1000 }
            entries[k].maxLayer = Int(op % 4)
            entries[k].upgradeMargin = op & 0x40 != 0 ? LayerAllocator.congestedUpgradeMargin : LayerAllocator.upgradeMargin
            let available = e.estimate
            var used = 0
            entries.withUnsafeMutableBufferPointer { es in
                order.withUnsafeMutableBufferPointer { o in used = LayerAllocator.allocate(available: available, es, order: o) }
            }
            for i in 0..<3 {
                promise(entries[i].layer <= min(entries[i].maxLayer, entries[i].layerCount - 1), "layer within the preference")
            }
            promise(used <= max(available, 0) || entries.allSatisfy { $0.layer < 0 }, "layers fit the available bitrate")
            for i in 0..<3 { entries[i].applied = entries[i].layer } // the next round's margin
        }
    }
}

/// Probe planning and pacing under arbitrary estimates, wants, clocks
/// (including going back) and send results: what is due stays bounded, a
/// cluster ends, and the planner's bitrates stay within its maximum.
func probing(_ p: UnsafeMutableRawPointer, _ count: Int) {
    var controller = ProbeController(maxBitrate: 5_000_000)
    var pacer = ProbePacer()
    var drain = DrainGate()
    var now: Int64 = 0
    operations(p, count) { op, arg in
        // The drain gate rides along: waits and releases at any time.
        if op & 0x20 != 0 {
            if let deadline = drain.wait(nowNs: now) { promise(deadline == now + DrainGate.maxWaitNs, "one deadline per wait") }
        } else if drain.release(nowNs: now, bytesInFlight: Int(arg) * 1000, estimate: Int(op) * 1000, force: op & 0x10 != 0) {
            promise(drain.waiting == 0, "a release ends the wait")
        }
        now += (Int64(arg) - (op & 0x80 != 0 ? 64 : 0)) * 1_000_000
        switch op % 4 {
        case 0:
            if let (a, b) = controller.start(estimate: Int(arg) * 10_000, nowNs: now) {
                promise(a.bitrate <= 5_000_000 && b.bitrate <= 5_000_000, "start probes within the maximum")
                pacer.add(a, nowNs: now)
                pacer.add(b, nowNs: now)
            }
        case 1:
            if let c = controller.update(estimate: Int(arg) * 20_000, wanted: Int(op) * 30_000, nowNs: now) {
                promise(c.bitrate <= 5_000_000 && c.minDurationNs >= 15_000_000, "probe within the maximum, 15 ms at least")
                pacer.add(c, nowNs: now)
            }
        case 2:
            let packetBytes = Int(op >> 2)
            let due = pacer.due(nowNs: now, packetBytes: packetBytes)
            promise(due >= 0 && due <= 64, "due packets bounded")
            let sent = op & 0x40 != 0 ? due / 2 : due
            pacer.sent(packets: sent, bytes: sent * packetBytes, nowNs: now)
        default:
            if arg & 1 != 0 { pacer.cancel() }
            promise(arg & 1 == 0 || !pacer.active, "cancel stops probing")
        }
    }
}
