/// One received packet on its way to its producer's consumers (its header
/// travels beside it): what each consumer kind decides on, with the key
/// frame check done at most once. Kept small: it is built per packet.
struct FanoutPacket {
    let packet: UnsafeMutableRawPointer
    let size: Int
    let routerPt: UInt8
    /// The simulcast layer (encoding) it belongs to, and its receive stream.
    let layer: Int
    let stream: Int
    /// The codec's `KeyFrameCodec` raw value.
    let codec: UInt8
    /// A layered stream's layers of this packet (SVC, or H264 temporal
    /// layers; nil: not layered, or none found).
    let svc: SvcLayers?
    /// -1: not looked at yet.
    private var keyFrame: Int8 = -1

    init(packet: UnsafeMutableRawPointer, size: Int, routerPt: UInt8, layer: Int, stream: Int, codec: UInt8, svc: SvcLayers? = nil) {
        // The dependency-descriptor path already asked the key frame
        // detector about a picture's first packet: not again.
        if let svc, svc.pictureStart, codec != KeyFrameCodec.vp9.rawValue { keyFrame = svc.interPicture ? 0 : 1 }
        self.packet = packet
        self.size = size
        self.routerPt = routerPt
        self.layer = layer
        self.stream = stream
        self.codec = codec
        self.svc = svc
    }

    @inline(__always)
    mutating func isKeyFrame(_ header: RtpHeader) -> Bool {
        if keyFrame < 0 {
            keyFrame = KeyFrameDetector.isKeyFrame(KeyFrameCodec(rawValue: codec) ?? .none, packet + header.payloadOffset, count: header.payloadLength) ? 1 : 0
        }
        return keyFrame == 1
    }
}

/// The consumer stage of forwarding: one decision per consumer kind.
/// Padding-only packets are dropped with the gap hidden in the consumer's
/// numbering (as mediasoup does); a consumer (re)starts on a key frame.
extension ForwarderLoop {
    /// A pipe consumer of a layered producer: every layer, every packet,
    /// the producer's numbering.
    @inline(__always)
    mutating func forwardLayered(_ ci: Int, _ f: FanoutPacket, _ header: RtpHeader) {
        sendToConsumer(ci, f.packet, size: f.size, header: header, routerPt: f.routerPt, layer: f.layer)
    }

    /// One stream: starts (and restarts after a pause) on a key frame for
    /// video, on any packet for audio; then forwards everything.
    @inline(__always)
    mutating func forwardSimple(_ ci: Int, _ f: inout FanoutPacket, _ header: RtpHeader) {
        // Padding only (a bandwidth probe): nothing for the endpoint.
        let paddingOnly = header.payloadLength == 0
        if consumers[ci].syncRequired {
            guard !paddingOnly, !consumers[ci].waitsForKeyFrame || f.isKeyFrame(header) else { return }
            rebase(ci, header, continueTimestamps: false)
        } else if paddingOnly {
            consumers[ci].rtp.drop(header.sequenceNumber)
            return
        }
        if dropsTemporalLayer(ci, f, header) { return }
        if consumers[ci].svc {
            guard let marker = svcDecision(ci, f, header) else { return }
            sendToConsumer(ci, f.packet, size: f.size, header: header, routerPt: f.routerPt, marker: marker == header.marker ? nil : marker)
            return
        }
        sendToConsumer(ci, f.packet, size: f.size, header: header, routerPt: f.routerPt)
    }

    /// A layered stream's packet: its layers, read once for all consumers.
    /// VP9 from its payload descriptor; others (AV1 SVC, H264 temporal
    /// layers) from the dependency descriptor and the stream's last
    /// template structure, the key frame from the payload.
    @inline(__always)
    mutating func packetLayers(stream: Int, _ packet: UnsafeRawPointer, _ header: RtpHeader, codec: UInt8, descriptorAt: Int) -> SvcLayers? {
        guard header.payloadLength > 0 else { return nil }
        if codec == KeyFrameCodec.vp9.rawValue {
            return SvcLayers.vp9(packet + header.payloadOffset, count: header.payloadLength)
        }
        guard descriptorAt >= 0 else { return nil }
        let length = RtpHeaderExtensions.dataLength(packet, header, dataOffset: descriptorAt)
        guard var l = DependencyDescriptor.parse(packet + descriptorAt, count: length, templates: &receiveStreams[stream].templates) else { return nil }
        if l.pictureStart {
            l.interPicture = !KeyFrameDetector.isKeyFrame(KeyFrameCodec(rawValue: codec) ?? .none, packet + header.payloadOffset, count: header.payloadLength)
        }
        return l
    }

    /// An SVC consumer's layers (see `SvcSelector`): nil when the packet is
    /// dropped (the gap hidden in the numbering), else its marker bit.
    @inline(__always)
    mutating func svcDecision(_ ci: Int, _ f: FanoutPacket, _ header: RtpHeader) -> Bool? {
        guard header.payloadLength > 0, let l = f.svc else { return header.marker }
        let d = consumers[ci].svcLayers.decide(l, keyFrame: l.pictureStart && !l.interPicture, marker: header.marker)
        if d.changed {
            worker.onEvent(.consumerLayer(consumer: consumerCold[ci].handle, layer: Int(consumers[ci].svcLayers.currentSpatial),
                                          temporal: consumers[ci].svcLayers.currentTemporal))
        }
        if d.requestKeyFrame { requestKeyFrame(consumer: ci) }
        // A new numbering from the key frame that ended a hold (gapless, as
        // a simulcast switch): NACKs for what was sent before it no longer
        // map back, so the repairs cannot flood the link again.
        if d.restart { rebase(ci, header, continueTimestamps: false) }
        guard d.forward else {
            consumers[ci].rtp.drop(header.sequenceNumber)
            consumers[ci].counters.dropped &+= 1
            return nil
        }
        return d.marker
    }

    /// One layer at a time (see `SimulcastSelector`): the target follows the
    /// publisher at once (a layer that came back, a target that went
    /// silent), and the consumer switches on the target's key frame with
    /// its numbering, timestamps and VP8 picture ids continuing.
    @inline(__always)
    mutating func forwardSimulcast(_ ci: Int, _ f: inout FanoutPacket, _ header: RtpHeader, producer p: Int) {
        let target = consumers[ci].layers.target
        let layerStartNs = receiveStreams[f.stream].firstArrivalNs
        let retarget = consumers[ci].layers.shouldRetarget(layer: f.layer, nowNs: turnNs, layerStartNs: layerStartNs) {
            let s = Int(producers[p].streams[target])
            return s < 0 || receiveStreams[s].silent(nowNs: turnNs)
        }
        if retarget { updateTargetLayer(ci, nowNs: turnNs) }
        let decision = consumers[ci].layers.decide(layer: f.layer, syncRequired: consumers[ci].syncRequired) { f.isKeyFrame(header) }
        switch decision {
        case .skip:
            return
        case .forward:
            if header.payloadLength == 0 {
                consumers[ci].rtp.drop(header.sequenceNumber)
                return
            }
        case .switchTo(let changed):
            rebase(ci, header, continueTimestamps: true)
            if changed { worker.onEvent(.consumerLayer(consumer: consumerCold[ci].handle, layer: f.layer, temporal: consumers[ci].temporal.current)) }
        }
        if dropsTemporalLayer(ci, f, header) { return }
        sendToConsumer(ci, f.packet, size: f.size, header: header, routerPt: f.routerPt)
    }

    /// VP8 temporal layers (see `TemporalLayerFilter`): whether the
    /// consumer drops this packet, its picture being above the consumer's
    /// temporal layer. The gap is hidden in the numbering and picture ids.
    @inline(__always)
    mutating func dropsTemporalLayer(_ ci: Int, _ f: FanoutPacket, _ header: RtpHeader) -> Bool {
        guard consumers[ci].temporal.target != TemporalLayerFilter.all || consumers[ci].temporal.current != TemporalLayerFilter.all,
              header.payloadLength > 0 else { return false }
        let vp8 = f.codec == KeyFrameCodec.vp8.rawValue
        let tid: UInt8, start: Bool
        if vp8, let t = Vp8EncodingContext.temporalLayer(f.packet + header.payloadOffset, count: header.payloadLength) {
            (tid, start) = t
        } else if !vp8, let l = f.svc {
            (tid, start) = (l.temporal, l.begin)
        } else {
            return false
        }
        let (forward, changed) = consumers[ci].temporal.forward(tid: tid, pictureStart: start)
        if changed {
            let layer = consumers[ci].simulcast ? max(0, consumers[ci].layers.current) : 0
            worker.onEvent(.consumerLayer(consumer: consumerCold[ci].handle, layer: layer, temporal: consumers[ci].temporal.current))
        }
        guard !forward else { return false }
        consumers[ci].rtp.drop(header.sequenceNumber)
        if vp8 { consumers[ci].vp8.dropPicture(f.packet + header.payloadOffset, count: header.payloadLength) }
        consumers[ci].counters.dropped &+= 1
        return true
    }
}
