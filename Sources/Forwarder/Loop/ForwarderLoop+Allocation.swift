import RingSFUCShims

/// What an estimating transport keeps besides its estimator: when probes
/// go out, the one being sent, and its last layer allocation.
package struct SendSideControl {
    var probes = ProbeController()
    var pacer = ProbePacer()
    var probeTimerArmed = false
    /// The consumer whose RTX stream carries the padding (-1: pick one).
    var probeConsumer: Int32 = -1
    var lastAllocationNs: Int64 = 0
    var allocatedEstimate = 0
    /// The first allocation: the start's own step down is no congestion.
    var firstAllocationNs: Int64 = -1
    /// Consumers whose key frame request waits for the link's queue to
    /// drain (see +Drain).
    var drain = DrainGate()
}

/// Preallocated memory for one transport's allocation at a time: its
/// entries, the allocator's order, and which consumer each entry is.
package struct AllocationScratch {
    static let capacity = 512
    let entries = UnsafeMutableBufferPointer<AllocationEntry>.allocate(capacity: capacity)
    let order = UnsafeMutableBufferPointer<Int32>.allocate(capacity: capacity)
    let consumers = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)

    init() {
        entries.initialize(repeating: AllocationEntry())
        order.initialize(repeating: 0)
    }

    func deallocate() {
        entries.deallocate()
        order.deallocate()
        consumers.deallocate()
    }
}

/// Layer allocation and probing per estimating WebRTC transport
/// (doc/bwe.md): the estimate is shared among the transport's consumers
/// by `LayerAllocator` (audio and simple video first, then simulcast layers
/// by priority), each simulcast or SVC consumer's layer limited to its
/// share; when that holds a consumer below the layer it wants, padding
/// probes look for headroom (nothing else would gain from it).
extension ForwarderLoop {
    /// Consumers of one transport an allocation takes in (more are left
    /// at their last limit).
    static let allocationCapacity = AllocationScratch.capacity
    /// A limit raised and lowered again within this time bars the layer
    /// (below 1.25x the estimate that raised it) for `barNs`.
    static let failedUpgradeNs: Int64 = 4_000_000_000
    static let barNs: Int64 = 30_000_000_000
    /// The first seconds of a transport's estimation are its start-up:
    /// stepping down then is finding the rate, not congestion.
    static let startupNs: Int64 = 5_000_000_000
    /// Padding bytes per probe packet (RFC 3550 padding: at most 255).
    static let probePadding = 244

    /// After each feedback: allocate again when the estimate moved by
    /// 5 % or a second passed (layer bitrates move too).
    mutating func maybeAllocate(transport t: Int, estimate: Int) {
        let control = sendSideControls + Int(transports[t].sendSide)
        let last = control.pointee.allocatedEstimate
        guard abs(estimate - last) * 20 > last || turnNs - control.pointee.lastAllocationNs >= 1_000_000_000 else { return }
        allocateLayers(transport: t)
    }

    mutating func allocateLayers(transport t: Int) {
        let i = Int(transports[t].sendSide)
        guard i >= 0 else { return }
        let estimate = sendSideEstimators[i].estimate
        let entries = allocation.entries
        var n = 0
        var wanted = 0
        // The estimate a barred layer waits for: probing must reach it, or
        // the bar outlives the congestion that caused it (nothing else
        // lifts an estimate the consumers' own rate does not test).
        var barredFloor = 0
        var c = transports[t].firstConsumer
        while c >= 0, n < Self.allocationCapacity {
            let ci = Int(c)
            c = consumerCold[ci].nextInTransport
            guard consumers[ci].active else { continue }
            let p = Int(consumers[ci].producer)
            var e = AllocationEntry()
            e.priority = consumerCold[ci].priority
            if consumers[ci].simulcast || consumers[ci].svc {
                if consumers[ci].simulcast {
                    e.layerCount = min(4, producers[p].layerCount)
                    for l in 0..<e.layerCount {
                        let s = Int(producers[p].streams[l])
                        e.layerBitrates[l] = s >= 0 && !receiveStreams[s].silent(nowNs: turnNs) ? Int(max(1, receiveStreams[s].bitrate)) : 0
                    }
                } else {
                    // An SVC layer is sent with every layer below it.
                    e.layerCount = Int(producers[p].svcSpatialLayers)
                    var cumulative = 0
                    for l in 0..<e.layerCount {
                        let b = Int(producerCold[p].svcBitrates[l])
                        cumulative += b
                        e.layerBitrates[l] = b > 0 ? max(1, cumulative) : 0
                    }
                }
                e.maxLayer = preferredLayer(ci)
                let preferred = LayerAllocator.highestSending(e, upTo: e.maxLayer)
                let barred = Int(consumerCold[ci].barredLayer)
                if barred > 0, turnNs < consumerCold[ci].barredUntilNs, estimate < consumerCold[ci].barredBelow {
                    e.maxLayer = min(e.maxLayer, barred - 1)
                    if barred <= preferred { barredFloor = max(barredFloor, consumerCold[ci].barredBelow + consumerCold[ci].barredBelow / 20) }
                }
                e.applied = min(layerLimit(ci), e.maxLayer)
                if turnNs < consumerCold[ci].congestedUntilNs { e.upgradeMargin = LayerAllocator.congestedUpgradeMargin }
                // What probing looks for: the preferred layer, barred or not,
                // with the margin an upgrade to it needs (a probe that stops
                // at the layer's own rate finds an estimate too low for it).
                let rate = e.layerBitrates[preferred]
                wanted += preferred > e.applied ? rate + Int(Double(rate) * e.upgradeMargin) : rate
            } else {
                let s = Int(producers[p].streams[0])
                e.fixedBitrate = s >= 0 ? Int(receiveStreams[s].bitrate) : 0
                wanted += e.fixedBitrate
            }
            entries[n] = e
            allocation.consumers[n] = Int32(ci)
            n += 1
        }
        // What the consumers send now: at 1.5x the estimate, the link
        // is overrun and consumers moving down stop their current layer.
        var sending = 0
        for k in 0..<n {
            let current = currentLayer(Int(allocation.consumers[k]))
            sending += entries[k].layerCount > 0 ? (current >= 0 ? entries[k].layerBitrates[current] : 0) : entries[k].fixedBitrate
        }
        let overrun = sending > estimate + estimate / 2
        let control = sendSideControls + i
        if control.pointee.firstAllocationNs < 0 { control.pointee.firstAllocationNs = turnNs }
        let settled = turnNs - control.pointee.firstAllocationNs > Self.startupNs
        // Overrun, the link's queue is full: share half the estimate, so
        // that the queue drains while the lower layers start (in one step,
        // not one key frame per layer on the way down).
        LayerAllocator.allocate(available: overrun ? estimate / 2 : estimate, UnsafeMutableBufferPointer(rebasing: entries[0..<n]),
                                order: UnsafeMutableBufferPointer(rebasing: allocation.order[0..<n]))
        // Probing can only help a consumer held below the layer it wants.
        var limited = false
        for k in 0..<n where entries[k].layerCount > 0 {
            let ci = Int(allocation.consumers[k])
            var limit = entries[k].layer
            if limit < LayerAllocator.highestSending(entries[k], upTo: preferredLayer(ci)) { limited = true }
            // The lowest sending layer is never withheld: a picture at a
            // low rate is better than none.
            if limit < 0 { limit = LayerAllocator.lowestSending(entries[k]) }
            if limit < currentLayer(ci) {
                if overrun {
                    if consumers[ci].simulcast { consumers[ci].layers.holding = true } else { consumers[ci].svcLayers.holdUntilKeyFrame() }
                }
                if settled { consumerCold[ci].congestedUntilNs = turnNs + Self.barNs }
            }
            let old = layerLimit(ci)
            guard limit != old else { continue }
            if limit > old {
                consumerCold[ci].limitRaisedNs = turnNs
                consumerCold[ci].limitRaisedEstimate = estimate
            } else if settled, old <= 3, turnNs - consumerCold[ci].limitRaisedNs < Self.failedUpgradeNs {
                // Up and soon down again: the estimate that allowed it was
                // wrong (a probe through a bursty shaper; the layer's key
                // frame overran the link). Not again below a clearly higher
                // estimate. (In the start-up the estimate is still finding
                // the rate: its swings are no verdict on the layer.)
                consumerCold[ci].barredLayer = Int8(old)
                consumerCold[ci].barredBelow = consumerCold[ci].limitRaisedEstimate * 5 / 4
                consumerCold[ci].barredUntilNs = turnNs + Self.barNs
            }
            setLayerLimit(ci, limit)
        }
        control.pointee.allocatedEstimate = estimate
        control.pointee.lastAllocationNs = turnNs
        if limited { planProbes(transport: t, estimate: estimate, wanted: max(wanted, barredFloor)) }
    }

    /// A simulcast or SVC consumer's preferred spatial layer, the
    /// allocation's limit on it, and the layer forwarded (-1: none yet).
    func preferredLayer(_ ci: Int) -> Int {
        consumers[ci].simulcast ? consumers[ci].layers.preferred : Int(consumers[ci].svcPreferred)
    }

    func layerLimit(_ ci: Int) -> Int {
        consumers[ci].simulcast ? consumers[ci].layers.limit : Int(consumers[ci].svcLimit)
    }

    func currentLayer(_ ci: Int) -> Int {
        if consumers[ci].simulcast { return consumers[ci].layers.current }
        let s = consumers[ci].svcLayers.currentSpatial
        return s == SvcSelector.none ? -1 : Int(s)
    }

    /// Applies a new limit: a simulcast consumer retargets (switching on
    /// the new layer's key frame), an SVC one drops or adds spatial layers.
    mutating func setLayerLimit(_ ci: Int, _ limit: Int) {
        if consumers[ci].simulcast {
            consumers[ci].layers.limit = limit
            updateTargetLayer(ci, nowNs: turnNs)
        } else {
            let down = limit < currentLayer(ci)
            consumers[ci].svcLimit = UInt8(clamping: limit)
            consumers[ci].svcLayers.setTarget(spatial: min(consumers[ci].svcPreferred, consumers[ci].svcLimit), temporal: consumers[ci].svcLayers.targetTemporal)
            // Congestion went with loss: the lower layers alone may miss a
            // reference the link dropped. A key frame restarts them (as
            // mediasoup asks for one on a K-SVC layer change); held for an
            // overrun link, once its queue has drained (+Drain).
            if down {
                if consumers[ci].svcLayers.holding { keyFrameWhenDrained(ci) } else { requestKeyFrame(consumer: ci) }
            }
        }
    }

    /// Starts probing when media first flows, then whenever the consumers
    /// want more than the estimate (see `ProbeController`).
    mutating func planProbes(transport t: Int, estimate: Int, wanted: Int) {
        let control = sendSideControls + Int(transports[t].sendSide)
        guard wanted > 0 else { return }
        if let (a, b) = control.pointee.probes.start(estimate: estimate, nowNs: turnNs) {
            control.pointee.pacer.add(a, nowNs: turnNs)
            control.pointee.pacer.add(b, nowNs: turnNs)
        } else if let cluster = control.pointee.probes.update(estimate: estimate, wanted: wanted, nowNs: turnNs) {
            control.pointee.pacer.add(cluster, nowNs: turnNs)
        }
        guard control.pointee.pacer.active else { return }
        control.pointee.probeConsumer = -1
        sendProbes(transport: t)
    }

    /// Sends what the current probe cluster has due and re-arms the probe
    /// timer while a cluster remains.
    mutating func sendProbes(transport t: Int) {
        let control = sendSideControls + Int(transports[t].sendSide)
        let ci = probeConsumer(transport: t)
        guard ci >= 0, let cluster = control.pointee.pacer.current else {
            control.pointee.pacer.cancel()
            return
        }
        let due = control.pointee.pacer.due(nowNs: turnNs, packetBytes: Self.probePadding + 24)
        var sent = 0, bytes = 0
        for _ in 0..<due {
            let size = sendPadding(consumer: ci, transport: t, cluster: cluster.id)
            guard size > 0 else { break }
            sent += 1
            bytes += size
        }
        control.pointee.pacer.sent(packets: sent, bytes: bytes, nowNs: turnNs)
        if sent == 0 && due > 0 { control.pointee.pacer.cancel() }
        if control.pointee.pacer.active, !control.pointee.probeTimerArmed {
            control.pointee.probeTimerArmed = true
            timers.schedule(.init(kind: TimerKind.probe.rawValue, argument: UInt32(t)), at: turnNs + ProbePacer.sliceNs)
        }
    }

    mutating func probeTimerFired(_ argument: UInt32) {
        let t = Int(argument)
        guard transports[t].inUse, transports[t].sendSide >= 0 else { return }
        turnNs = rsfu_monotonic_ns()
        sendSideControls[Int(transports[t].sendSide)].probeTimerArmed = false
        sendProbes(transport: t)
    }

    /// A video consumer of the transport with an RTX stream that has
    /// started: padding on its RTX SSRC is known to the endpoint and
    /// disturbs no media numbering.
    mutating func probeConsumer(transport t: Int) -> Int {
        let control = sendSideControls + Int(transports[t].sendSide)
        let known = Int(control.pointee.probeConsumer)
        if known >= 0, consumers[known].inUse, consumers[known].transport == UInt32(t), consumers[known].active { return known }
        var c = transports[t].firstConsumer
        while c >= 0 {
            let ci = Int(c)
            if consumers[ci].active, consumers[ci].rtp.started, consumerCold[ci].rtxSsrc != 0,
               consumerCold[ci].probePayloadType != PayloadTypeMap.none {
                control.pointee.probeConsumer = Int32(ci)
                return ci
            }
            c = consumerCold[ci].nextInTransport
        }
        return -1
    }

    /// One padding-only packet on the consumer's RTX stream, numbered
    /// transport-wide and remembered as part of the probe cluster. Returns
    /// its size (0: not sent).
    mutating func sendPadding(consumer ci: Int, transport t: Int, cluster: UInt8) -> Int {
        guard transports[t].remoteRtp.isSet, !(transports[t].srtpRequired && transports[t].srtpSend == nil) else { return 0 }
        let slot = freeSendSlots.pop()
        guard slot >= 0 else {
            counters.dropSendPoolEmpty &+= 1
            return 0
        }
        let out = sendSlab.slot(Int(slot))
        // V=2, padding, one extension block; the RTX payload type, no marker.
        out.storeBytes(of: 0xB0, toByteOffset: 0, as: UInt8.self)
        out.storeBytes(of: consumerCold[ci].probePayloadType, toByteOffset: 1, as: UInt8.self)
        writeUInt16(out, 2, consumerCold[ci].rtxSequence)
        consumerCold[ci].rtxSequence &+= 1
        writeUInt32(out, 4, consumers[ci].rtp.lastTimestamp)
        writeUInt32(out, 8, consumerCold[ci].rtxSsrc)
        // One-byte elements: the transport-wide number, then the MID.
        var size = 16
        out.storeBytes(of: transports[t].sendSideExtensionId << 4 | 1, toByteOffset: size, as: UInt8.self)
        let sequenceOffset = size + 1
        size += 3
        let midLength = consumers[ci].midExtensionId != 0 ? min(consumers[ci].midLength, 16) : 0
        if midLength > 0 {
            out.storeBytes(of: consumers[ci].midExtensionId << 4 | UInt8(midLength - 1), toByteOffset: size, as: UInt8.self)
            for k in 0..<midLength { out.storeBytes(of: consumers[ci].mid[k], toByteOffset: size + 1 + k, as: UInt8.self) }
            size += 1 + midLength
        }
        while size % 4 != 0 {
            out.storeBytes(of: 0, toByteOffset: size, as: UInt8.self)
            size += 1
        }
        writeUInt16(out, 12, 0xBEDE)
        writeUInt16(out, 14, UInt16((size - 16) / 4))
        (out + size).initializeMemory(as: UInt8.self, repeating: 0, count: Self.probePadding - 1)
        size += Self.probePadding
        out.storeBytes(of: UInt8(Self.probePadding), toByteOffset: size - 1, as: UInt8.self)
        let history = sendHistories + Int(transports[t].sendSide)
        writeUInt16(out, sequenceOffset, history.pointee.record(sendNs: turnNs, bytes: size, cluster: cluster))
        sendSideEstimators[Int(transports[t].sendSide)].probeSent(cluster: cluster)
        var length = size
        if let srtp = transports[t].srtpSend {
            guard case .ok(let n) = srtp.protect(out, length: size) else {
                counters.dropSrtpOther &+= 1
                freeSendSlots.push(slot)
                return 0
            }
            length = n
        }
        transports[t].counters.packetsOut &+= 1
        transports[t].counters.bytesOut &+= UInt64(size)
        counters.probePackets &+= 1
        enqueue(consumer: ci, slot: slot, data: out, length: length, transport: t)
        return size
    }
}
