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
