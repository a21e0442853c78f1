/// One received packet on its way to its producer's consumers: what each
/// consumer kind decides on, with the key frame check done at most once.
struct FanoutPacket {
    let packet: UnsafeMutableRawPointer
    let size: Int
    let header: RtpHeader
    let routerPt: UInt8
    /// The simulcast layer (encoding) it belongs to, and when that layer's
    /// first packet arrived.
    let layer: Int
    let layerStartNs: Int64
    let codec: KeyFrameCodec
    /// -1: not looked at yet.
    private var keyFrame: Int8 = -1

    init(packet: UnsafeMutableRawPointer, size: Int, header: RtpHeader, routerPt: UInt8, layer: Int, layerStartNs: Int64, codec: KeyFrameCodec) {
        self.packet = packet
        self.size = size
        self.header = header
        self.routerPt = routerPt
        self.layer = layer
        self.layerStartNs = layerStartNs
        self.codec = codec
    }

    /// Padding only (a bandwidth probe): nothing for an endpoint.
    var paddingOnly: Bool { header.payloadLength == 0 }

    @inline(__always)
    mutating func isKeyFrame() -> Bool {
        if keyFrame < 0 {
            keyFrame = KeyFrameDetector.isKeyFrame(codec, packet + header.payloadOffset, count: header.payloadLength) ? 1 : 0
        }
        return keyFrame == 1
    }
}

/// The consumer stage of forwarding: one decision per consumer kind.
/// Padding-only packets are dropped with the gap hidden in the consumer's
/// numbering (as mediasoup does); a consumer (re)starts on a key frame.
extension ForwarderLoop {
    @inline(__always)
    mutating func fanOut(_ f: inout FanoutPacket, producer p: Int) {
        var c = producers[p].firstConsumer
        while c >= 0 {
            let ci = Int(c)
            let next = consumers[ci].nextInProducer
            if consumers[ci].active {
                if consumers[ci].layered {
                    forwardLayered(ci, f)
                } else if consumers[ci].simulcast {
                    forwardSimulcast(ci, &f, producer: p)
                } else if f.layer == 0 {
                    forwardSimple(ci, &f)
                }
            }
            c = next
        }
    }

    /// A pipe consumer of a layered producer: every layer, every packet,
    /// the producer's numbering.
    @inline(__always)
    mutating func forwardLayered(_ ci: Int, _ f: FanoutPacket) {
        sendToConsumer(ci, f.packet, size: f.size, header: f.header, routerPt: f.routerPt, layer: f.layer)
    }

    /// One stream: starts (and restarts after a pause) on a key frame for
    /// video, on any packet for audio; then forwards everything.
    @inline(__always)
    mutating func forwardSimple(_ ci: Int, _ f: inout FanoutPacket) {
        if consumers[ci].syncRequired {
            guard !f.paddingOnly, !consumers[ci].waitsForKeyFrame || f.isKeyFrame() else { return }
            rebase(ci, f.header, continueTimestamps: false)
        } else if f.paddingOnly {
            consumers[ci].rtp.drop(f.header.sequenceNumber)
            return
        }
        sendToConsumer(ci, f.packet, size: f.size, header: f.header, routerPt: f.routerPt)
    }

    /// One layer at a time (see `SimulcastSelector`): the target follows the
    /// publisher at once (a layer that came back, a target that went
    /// silent), and the consumer switches on the target's key frame with
    /// its numbering, timestamps and VP8 picture ids continuing.
    @inline(__always)
    mutating func forwardSimulcast(_ ci: Int, _ f: inout FanoutPacket, producer p: Int) {
        let target = consumers[ci].layers.target
        let retarget = consumers[ci].layers.shouldRetarget(layer: f.layer, nowNs: turnNs, layerStartNs: f.layerStartNs) {
            let s = Int(producers[p].streams[target])
            return s < 0 || receiveStreams[s].silent(nowNs: turnNs)
        }
        if retarget { updateTargetLayer(ci, nowNs: turnNs) }
        let decision = consumers[ci].layers.decide(layer: f.layer, syncRequired: consumers[ci].syncRequired) { f.isKeyFrame() }
        switch decision {
        case .skip:
            return
        case .forward:
            if f.paddingOnly {
                consumers[ci].rtp.drop(f.header.sequenceNumber)
                return
            }
        case .switchTo(let changed):
            rebase(ci, f.header, continueTimestamps: true)
            if changed { worker.onEvent(.consumerLayer(consumer: consumers[ci].handle, layer: f.layer)) }
        }
        sendToConsumer(ci, f.packet, size: f.size, header: f.header, routerPt: f.routerPt)
    }
}
