import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// Producers and consumers in the forwarder's tables: created, linked into
/// their transport's and producer's lists, looked up by SSRC, paused,
/// described, and freed.
extension ForwarderLoop {

    mutating func addProducer(_ h: Int, transport t: Int, _ spec: ProducerSpec) {
        guard transports[t].inUse else { return }
        var p = ProducerState(), cold = ProducerColdState()
        p.inUse = true
        p.transport = UInt32(t)
        p.isVideo = spec.isVideo
        p.svcSpatialLayers = max(1, min(4, spec.svcSpatialLayers))
        p.layered = spec.layered
        p.dependencyDescriptorId = spec.dependencyDescriptorId
        p.addTransportWideId = spec.addTransportWideId
        p.paused = spec.paused
        p.payloadTypes = PayloadTypeMap(pairs: spec.payloadTypes)
        for (pt, codec) in spec.codecs where pt < 128 { p.codecs[Int(pt)] = codec.rawValue }
        p.extensionIds = ExtensionIdMap(pairs: spec.extensionIds)
        p.audioLevelId = spec.audioLevelId
        cold.useFir = spec.useFir
        p.rtxPayloadTypes = PayloadTypeMap(pairs: spec.rtxPayloadTypes)
        p.layerCount = max(1, min(4, max(spec.ssrcs.count, spec.rids.count)))
        // A receive stream per layer: layer 0 uses the producer's own slot.
        for layer in 0..<p.layerCount {
            var s = Int32(h)
            if layer > 0 {
                let extra = freeExtraStreams.pop()
                s = extra < 0 ? -1 : extra + Int32(settings.maxProducers)
            }
            if s < 0 { p.layerCount = layer; break }
            var receive = ReceiveStreamState()
            receive.producer = Int32(h)
            receive.layer = layer
            receive.clockRate = Int64(max(1, spec.clockRate))
            receive.nackEnabled = spec.nack && spec.isVideo
            // Still listed for the NACK timer if a closed producer used it.
            receive.inNackList = receiveStreams[Int(s)].inNackList
            receiveStreams[Int(s)] = receive
            p.streams[layer] = s
            let value = UInt32(h) | UInt32(layer) << Self.layerShift
            if layer < spec.ssrcs.count, spec.ssrcs[layer] != 0, ssrcTable.insert(transport: UInt32(t), ssrc: spec.ssrcs[layer], value: value) {
                p.ssrcs[layer] = spec.ssrcs[layer]
            }
            if layer < spec.rtxSsrcs.count, spec.rtxSsrcs[layer] != 0,
               ssrcTable.insert(transport: UInt32(t), ssrc: spec.rtxSsrcs[layer], value: value | Self.rtxFlag) {
                p.rtxSsrcs[layer] = spec.rtxSsrcs[layer]
            }
            if layer < spec.rids.count, !spec.rids[layer].isEmpty {
                cold.ridKeys[layer] = spec.rids[layer].withUnsafeBytes { ForwarderLoop.valueKey($0.baseAddress!, $0.count) }
                ridTable.insert(transport: UInt32(t), ssrc: cold.ridKeys[layer], value: value)
            }
        }
        ensureReportTimer()
        if spec.midExtensionId != 0 { transports[t].midExtensionId = spec.midExtensionId }
        if spec.ridExtensionId != 0 { transports[t].ridExtensionId = spec.ridExtensionId }
        if spec.rridExtensionId != 0 { transports[t].rridExtensionId = spec.rridExtensionId }
        enableFeedback(transport: t, spec)
        if !spec.mid.isEmpty {
            cold.midKey = spec.mid.withUnsafeBytes { ForwarderLoop.valueKey($0.baseAddress!, $0.count) }
            midTable.insert(transport: UInt32(t), ssrc: cold.midKey, value: UInt32(h))
        }
        cold.nextInTransport = transports[t].firstProducer
        if cold.nextInTransport >= 0 { producerCold[Int(cold.nextInTransport)].prevInTransport = Int32(h) }
        transports[t].firstProducer = Int32(h)
        producers[h] = p
        producerCold[h] = cold
    }

    mutating func closeProducer(_ h: Int) {
        guard producers[h].inUse else { return }
        // Its consumers die with it (mediasoup: Consumer::ProducerClosed).
        while producers[h].firstConsumer >= 0 { closeConsumer(Int(producers[h].firstConsumer)) }
        detachFromObservers(h)
        let t = Int(producers[h].transport)
        for layer in 0..<producers[h].layerCount {
            if producers[h].ssrcs[layer] != 0 { ssrcTable.remove(transport: UInt32(t), ssrc: producers[h].ssrcs[layer]) }
            if producers[h].rtxSsrcs[layer] != 0 { ssrcTable.remove(transport: UInt32(t), ssrc: producers[h].rtxSsrcs[layer]) }
            if producerCold[h].ridKeys[layer] != 0 { ridTable.remove(transport: UInt32(t), ssrc: producerCold[h].ridKeys[layer]) }
            let s = Int(producers[h].streams[layer])
            guard s >= 0 else { continue }
            retransmissions.forget(stream: s)
            // producer -1: the NACK timer drops it from its list (the flag
            // stays, so the stream is never listed twice).
            let listed = receiveStreams[s].inNackList
            receiveStreams[s] = ReceiveStreamState()
            receiveStreams[s].inNackList = listed
            if layer > 0 { freeExtraStreams.push(Int32(s - Int(settings.maxProducers))) }
        }
        if producerCold[h].midKey != 0 { midTable.remove(transport: UInt32(t), ssrc: producerCold[h].midKey) }
        let prev = producerCold[h].prevInTransport, next = producerCold[h].nextInTransport
        if prev >= 0 { producerCold[Int(prev)].nextInTransport = next } else { transports[t].firstProducer = next }
        if next >= 0 { producerCold[Int(next)].prevInTransport = prev }
        producers[h] = ProducerState()
        producerCold[h] = ProducerColdState()
    }

    mutating func addConsumer(_ h: Int, transport t: Int, producer p: Int, _ spec: ConsumerSpec) {
        guard transports[t].inUse, producers[p].inUse else { return }
        var c = ConsumerState(), cold = ConsumerColdState()
        c.inUse = true
        c.transport = UInt32(t)
        c.producer = UInt32(p)
        c.ssrc = spec.ssrc
        if spec.midExtensionId != 0, !spec.mid.isEmpty, spec.mid.count <= 16 {
            c.midExtensionId = spec.midExtensionId
            c.midLength = spec.mid.count
            for (i, b) in spec.mid.enumerated() { c.mid[i] = b }
        }
        c.payloadTypes = PayloadTypeMap(pairs: spec.payloadTypes)
        c.extensionIds = ExtensionIdMap(pairs: spec.extensionIds)
        if spec.transportCcExtensionId != 0 {
            enableSendSide(transport: t, extensionId: spec.transportCcExtensionId)
            c.transportWide = transports[t].sendSideExtensionId == spec.transportCcExtensionId
        }
        c.paused = spec.paused
        c.producerPaused = spec.producerPaused
        c.waitsForKeyFrame = spec.waitsForKeyFrame
        cold.nack = spec.nack
        if spec.nack { producers[p].nackConsumers += 1 }
        cold.rtxSsrc = spec.rtxSsrc
        cold.rtxPayloadTypes = PayloadTypeMap(pairs: spec.rtxPayloadTypes)
        cold.rtxSequence = UInt16.random(in: 0...0x7FFF, using: &random)
        if producers[p].isVideo, let pair = spec.rtxPayloadTypes.first { cold.probePayloadType = pair.1 }
        cold.priority = spec.priority
        c.temporal = TemporalLayerFilter(target: spec.temporalLayer)
        if spec.svc {
            c.svc = true
            c.svcLayers = SvcSelector(spatial: UInt8(clamping: spec.preferredLayer), temporal: spec.temporalLayer)
            c.svcPreferred = UInt8(clamping: spec.preferredLayer)
        }
        cold.cnameLength = min(spec.cname.count, 64)
        for i in 0..<cold.cnameLength { cold.cname[i] = spec.cname[i] }
        let layers = producers[p].layerCount
        if spec.layerSsrcs.count > 1 {
            c.layered = true
            for (i, ssrc) in spec.layerSsrcs.prefix(4).enumerated() { cold.layerSsrcs[i] = ssrc }
            for (i, ssrc) in spec.layerRtxSsrcs.prefix(4).enumerated() { cold.layerRtxSsrcs[i] = ssrc }
        } else if spec.simulcast && layers > 1 {
            c.simulcast = true
            c.layers = SimulcastSelector(preferred: max(0, min(layers - 1, spec.preferredLayer)), nowNs: rsfu_monotonic_ns())
        }
        ensureReportTimer()
        c.syncRequired = true
        c.nextInProducer = producers[p].firstConsumer
        if c.nextInProducer >= 0 { consumerCold[Int(c.nextInProducer)].prevInProducer = Int32(h) }
        producers[p].firstConsumer = Int32(h)
        cold.nextInTransport = transports[t].firstConsumer
        if cold.nextInTransport >= 0 { consumerCold[Int(cold.nextInTransport)].prevInTransport = Int32(h) }
        transports[t].firstConsumer = Int32(h)
        consumers[h] = c
        consumerCold[h] = cold
        if c.layered {
            for layer in 0..<min(4, spec.layerSsrcs.count) {
                _ = consumerSsrcTable.insert(transport: UInt32(t), ssrc: cold.layerSsrcs[layer], value: UInt32(h) | UInt32(layer) << Self.layerShift)
            }
        } else {
            _ = consumerSsrcTable.insert(transport: UInt32(t), ssrc: spec.ssrc, value: UInt32(h))
        }
        if c.simulcast { updateTargetLayer(h) }
        // A consumer joining a running stream asks for a key frame at once.
        if c.waitsForKeyFrame && c.active && !c.layered { requestKeyFrame(consumer: h) }
    }

    /// A simulcast consumer's target: the highest layer up to its preferred
    /// one that is not silent. A new target asks its layer for a key frame.
    mutating func updateTargetLayer(_ h: Int, nowNs: Int64 = rsfu_monotonic_ns()) {
        guard consumers[h].simulcast else { return }
        let p = Int(consumers[h].producer)
        let layer = consumers[h].layers.retarget(nowNs: nowNs, syncRequired: consumers[h].syncRequired) { layer in
            let s = Int(producers[p].streams[layer])
            return s < 0 || receiveStreams[s].silent(nowNs: nowNs)
        }
        if let layer, consumers[h].active { requestKeyFrame(producer: p, layer: layer) }
    }

    mutating func setConsumer(_ h: Int, _ change: (inout ConsumerState) -> Void) {
        guard consumers[h].inUse else { return }
        let wasActive = consumers[h].active
        change(&consumers[h])
        // Becoming active again restarts on a key frame and re-bases the
        // sequence numbers right after the last one sent.
        if !wasActive && consumers[h].active {
            consumers[h].syncRequired = true
            // The endpoint needs a key frame to start decoding again.
            if consumers[h].waitsForKeyFrame && !consumers[h].layered { requestKeyFrame(consumer: h) }
        }
    }

    /// A producer's figures; for a layer of a simulcast producer, that
    /// stream's packets, bytes, bitrate, loss and score.
    func producerFigures(_ h: Int, layer: Int = 0) -> EntityCounters {
        guard producers[h].inUse, layer >= 0, layer < producers[h].layerCount, producers[h].streams[layer] >= 0 else { return EntityCounters() }
        var c = producers[h].counters
        let rs = receiveStreams[Int(producers[h].streams[layer])]
        c.ssrc = producers[h].ssrcs[layer]
        if producers[h].layerCount > 1 {
            c.packets = rs.received
            c.bytes = rs.bytes
            c.bitrate = rs.bitrate
        }
        c.packetsLost = max(0, rs.lost)
        c.fractionLost = rs.lastFractionLost
        c.jitter = UInt32(clamping: rs.jitterQ4 >> 4)
        c.packetsRepaired = rs.recovered
        c.score = producerCold[h].scores[layer]
        return c
    }

    func consumerFigures(_ h: Int) -> EntityCounters {
        guard consumers[h].inUse else { return EntityCounters() }
        var c = consumers[h].counters
        c.packetsLost = Int64(consumerCold[h].remoteLost)
        c.fractionLost = consumerCold[h].remoteFractionLost
        c.jitter = consumerCold[h].remoteJitter
        c.score = consumerCold[h].score
        c.roundTripTimeMs = Double(consumerCold[h].rttNs) / 1_000_000
        return c
    }

    mutating func closeConsumer(_ h: Int) {
        guard consumers[h].inUse else { return }
        let p = Int(consumers[h].producer), t = Int(consumers[h].transport)
        if consumerCold[h].nack { producers[p].nackConsumers -= 1 }
        var prev = consumerCold[h].prevInProducer, next = consumers[h].nextInProducer
        if prev >= 0 { consumers[Int(prev)].nextInProducer = next } else { producers[p].firstConsumer = next }
        if next >= 0 { consumerCold[Int(next)].prevInProducer = prev }
        prev = consumerCold[h].prevInTransport
        next = consumerCold[h].nextInTransport
        if prev >= 0 { consumerCold[Int(prev)].nextInTransport = next } else { transports[t].firstConsumer = next }
        if next >= 0 { consumerCold[Int(next)].prevInTransport = prev }
        if consumers[h].layered {
            for layer in 0..<4 where consumerCold[h].layerSsrcs[layer] != 0 {
                _ = consumerSsrcTable.remove(transport: UInt32(t), ssrc: consumerCold[h].layerSsrcs[layer])
            }
        } else if consumerSsrcTable.lookup(transport: UInt32(t), ssrc: consumers[h].ssrc) == UInt32(h) {
            _ = consumerSsrcTable.remove(transport: UInt32(t), ssrc: consumers[h].ssrc)
        }
        consumers[h] = ConsumerState()
        consumerCold[h] = ConsumerColdState()
    }
}
