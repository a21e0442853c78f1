import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// The producer stage of forwarding: a received RTP packet is parsed,
/// matched to its producer and layer (learning SSRCs from MID/RID), counted
/// and repaired, mapped to the router's numbering, kept for NACKs, then
/// handed to each of the producer's consumers (see +Fanout).
extension ForwarderLoop {
    // MARK: - Forwarding

    @inline(__always)
    mutating func forwardRtp(_ packet: UnsafeMutableRawPointer, size: Int, transport t: Int) {
        var header: RtpHeader
        var size = size
        do {
            header = try RtpHeader.parse(packet, count: size)
        } catch {
            counters.dropMalformed &+= 1
            return
        }
        if transports[t].transportCc >= 0 { recordTransportCc(packet, header, transport: t) }
        guard let handle = ssrcTable.lookup(transport: UInt32(t), ssrc: header.ssrc) ?? learnSsrc(packet, header, transport: t) else {
            counters.dropUnknownSsrc &+= 1
            return
        }
        let p = Int(handle & Self.handleMask)
        let layer = Int((handle >> Self.layerShift) & 0x7)
        let repair = handle & Self.rtxFlag != 0
        if transports[t].incomingLimit.active, !transports[t].remb.enabled {
            mayAnnounceIncomingLimit(transport: t)
        }
        if repair {
            guard let unwrapped = unwrapRtx(packet, size: size, header, producer: p, layer: layer) else { return }
            (header, size) = unwrapped
        }
        let stream = Int(producers[p].streams[layer])
        guard stream >= 0 else { counters.dropUnknownSsrc &+= 1; return }
        var gap = 0
        guard receiveStreams[stream].record(sequence: header.sequenceNumber, timestamp: header.timestamp, arrivalNs: turnNs, repair: repair, gap: &gap) else {
            return // a repair of nothing missing
        }
        if gap != 0 { lossDetected(stream: stream, gap: gap) }
        receiveStreams[stream].bytes &+= UInt64(size)
        // Map the producer's numbering to the router's, in place.
        let routerPt = producers[p].payloadTypes[header.payloadType]
        guard routerPt != PayloadTypeMap.none else {
            producers[p].counters.dropped &+= 1
            counters.dropMalformed &+= 1
            return
        }
        let descriptorAt: Int
        do {
            descriptorAt = try RtpHeaderExtensions.remapIds(packet, header, (producers + p).pointer(to: \.extensionIds)!,
                                                            find: producers[p].dependencyDescriptorId)
        } catch {
            counters.dropMalformed &+= 1
            return
        }
        RtpRewrite.setPayloadType(packet, routerPt)
        if producers[p].traceMask != 0 {
            traceProducer(p, .rtp, incoming: true) { Self.fillRtp(&$0, header, size: size) }
            if producers[p].traceMask & TraceType.keyframe.rawValue != 0, isKeyFrame(packet, header, codec: producers[p].codecs[Int(routerPt)]) {
                traceProducer(p, .keyframe, incoming: true) { Self.fillRtp(&$0, header, size: size) }
            }
        }
        producers[p].counters.packets &+= 1
        producers[p].counters.bytes &+= UInt64(size)
        let codec = producers[p].codecs[Int(routerPt)]
        let svc = producers[p].layered ? packetLayers(stream: stream, packet, header, codec: codec, descriptorAt: descriptorAt) : nil
        if let l = svc, producers[p].svcSpatialLayers > 1, l.spatial < 4 {
            producerCold[p].svcBytes[Int(l.spatial)] &+= UInt64(size)
        }
        if producers[p].paused { return }
        if producers[p].observerCount > 0 { recordAudioLevel(p, packet, header) }
        // A publisher without transport-wide numbers: the element is added
        // here, once, for consumers that number their packets (as mediasoup
        // does); the others' id maps drop it again.
        if producers[p].addTransportWideId != 0,
           let (grown, _) = RtpHeaderExtensions.insert(packet, header, id: producers[p].addTransportWideId, value: 0, size: size, capacity: settings.bufferSize),
           let reparsed = try? RtpHeader.parse(packet, count: grown) {
            size = grown
            header = reparsed
        }

        // Kept for NACKs while a consumer that negotiated them exists.
        if producers[p].nackConsumers > 0 {
            retransmissions.store(stream: stream, sequence: header.sequenceNumber, packet, length: size, nowNs: turnNs)
        }
        // Key frame detection is done at most once per packet, and only if
        // some consumer is waiting for one or a request is pending.
        var f = FanoutPacket(packet: packet, size: size, routerPt: routerPt, layer: layer, stream: stream, codec: codec, svc: svc)
        if producers[p].keyFrameRequests[layer].pending, f.isKeyFrame(header) {
            producers[p].keyFrameRequests[layer].keyFrameArrived()
            producers[p].counters.keyFrames &+= 1
        }
        // The consumer stage: one decision per consumer kind (+Fanout).
        var c = producers[p].firstConsumer
        while c >= 0 {
            let ci = Int(c)
            let next = consumers[ci].nextInProducer
            if consumers[ci].active {
                if consumers[ci].layered {
                    forwardLayered(ci, f, header)
                } else if consumers[ci].simulcast {
                    forwardSimulcast(ci, &f, header, producer: p)
                } else if layer == 0 {
                    forwardSimple(ci, &f, header)
                }
            }
            c = next
        }
    }

    /// Re-bases a consumer's numbering on this packet: sequence numbers
    /// continue right after the last one sent (pause/resume and layer
    /// switches leave no gap); across a layer switch timestamps continue
    /// too, advanced by the time since the last packet sent.
    @inline(__always)
    mutating func rebase(_ ci: Int, _ header: RtpHeader, continueTimestamps: Bool) {
        let p = Int(consumers[ci].producer)
        let clock = receiveStreams[Int(producers[p].streams[0])].clockRate
        consumers[ci].rtp.sync(input: header.sequenceNumber, timestamp: header.timestamp, continueTimestamps: continueTimestamps,
                               nowNs: turnNs, clockRate: clock)
        consumers[ci].syncRequired = false
        // The switching key frame continues the descriptor numbering too.
        if consumers[ci].simulcast { consumers[ci].vp8.sync() }
    }

    /// An unknown SSRC is learnt from the header extensions, so later packets
    /// match by SSRC (mediasoup's RtpListener and Producer order): with a
    /// repaired RID it is that layer's RTX stream; with a RID, that layer's
    /// media; with only a MID, the stream of a single-encoding producer (RTX
    /// when its payload type is an RTX one). A MID never names a layer of a
    /// simulcast producer: RTX probes carry the MID too, and taking one for
    /// layer 0 would leave the real layer 0 unknown.
    mutating func learnSsrc(_ packet: UnsafeMutableRawPointer, _ header: RtpHeader, transport t: Int) -> UInt32? {
        let midId = transports[t].midExtensionId, ridId = transports[t].ridExtensionId, rridId = transports[t].rridExtensionId
        guard midId != 0 || ridId != 0 || rridId != 0, header.extensionOffset != nil else { return nil }
        var midKey: UInt32 = 0, ridKey: UInt32 = 0, rridKey: UInt32 = 0
        try? RtpHeaderExtensions.forEach(packet, header) { id, offset, length in
            if id == midId { midKey = Self.valueKey(packet + offset, length) }
            if id == ridId { ridKey = Self.valueKey(packet + offset, length) }
            if id == rridId { rridKey = Self.valueKey(packet + offset, length) }
        }
        var value: UInt32
        var repair = false
        if rridKey != 0, let v = ridTable.lookup(transport: UInt32(t), ssrc: rridKey) {
            value = v
            repair = true
        } else if ridKey != 0, let v = ridTable.lookup(transport: UInt32(t), ssrc: ridKey) {
            value = v
        } else if ridKey == 0, rridKey == 0, midKey != 0, let v = midTable.lookup(transport: UInt32(t), ssrc: midKey) {
            value = v
            let p = Int(v & Self.handleMask)
            guard producers[p].inUse, producers[p].layerCount == 1 else { return nil }
            repair = producers[p].rtxPayloadTypes[header.payloadType] != PayloadTypeMap.none
        } else {
            return nil
        }
        let p = Int(value & Self.handleMask), layer = Int((value >> Self.layerShift) & 0x7)
        guard producers[p].inUse, layer < producers[p].layerCount else { return nil }
        if repair {
            guard producers[p].rtxSsrcs[layer] == 0, producers[p].rtxPayloadTypes[header.payloadType] != PayloadTypeMap.none else { return nil }
            value |= Self.rtxFlag
            guard ssrcTable.insert(transport: UInt32(t), ssrc: header.ssrc, value: value) else { return nil }
            producers[p].rtxSsrcs[layer] = header.ssrc
        } else {
            guard producers[p].ssrcs[layer] == 0 else { return nil }
            guard ssrcTable.insert(transport: UInt32(t), ssrc: header.ssrc, value: value) else { return nil }
            producers[p].ssrcs[layer] = header.ssrc
        }
        return value
    }

    /// FNV-1a of a MID/RID value (never 0, which means "none").
    @inline(__always)
    static func valueKey(_ p: UnsafeRawPointer, _ length: Int) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for i in 0..<length {
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            if b == 0 { break } // padding inside a value is not part of it
            h = (h ^ UInt32(b)) &* 0x0100_0193
        }
        return h == 0 ? 1 : h
    }

    @inline(__always)
    func isKeyFrame(_ packet: UnsafeMutableRawPointer, _ header: RtpHeader, codec: UInt8) -> Bool {
        KeyFrameDetector.isKeyFrame(KeyFrameCodec(rawValue: codec) ?? .none, packet + header.payloadOffset, count: header.payloadLength)
    }
}
