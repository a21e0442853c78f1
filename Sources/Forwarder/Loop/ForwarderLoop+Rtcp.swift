import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// RTCP on the worker thread: feedback from consumers' endpoints (PLI,
/// FIR, NACK) is routed by the consumer SSRC it names; key frame requests
/// go to the producer's endpoint through a per-producer request state that
/// coalesces them and retries once after a second without a key frame.
extension ForwarderLoop {
    /// The SSRC RingSFU signs its own feedback with.
    static let feedbackSenderSsrc: UInt32 = 1

    mutating func receiveRtcp(_ packet: UnsafeMutableRawPointer, size: Int, transport t: Int) {
        counters.rtcpIn &+= 1
        transports[t].counters.rtcpPackets &+= 1
        do {
            try Rtcp.forEach(packet, count: size) { (v) throws(RtcpError) in
                switch v.type {
                case RtcpType.psfb where v.count == RtcpFormat.pli:
                    let (_, media) = try Rtcp.feedbackSsrcs(v)
                    if let (c, layer) = consumer(transport: t, ssrc: media) {
                        consumers[c].counters.pli &+= 1
                        traceConsumer(c, .pli, incoming: true)
                        requestKeyFrame(consumer: c, layer: layer)
                    }
                case RtcpType.psfb where v.count == RtcpFormat.fir:
                    try Rtcp.forEachFirEntry(v) { ssrc, sequence in
                        guard let (c, layer) = consumer(transport: t, ssrc: ssrc) else { return }
                        // A repeated request number is a retransmitted FIR.
                        guard consumerCold[c].lastFirSequence != Int16(sequence) else { return }
                        consumerCold[c].lastFirSequence = Int16(sequence)
                        consumers[c].counters.fir &+= 1
                        traceConsumer(c, .fir, incoming: true) { $0.sequenceNumber = UInt16(sequence) }
                        requestKeyFrame(consumer: c, layer: layer)
                    }
                case RtcpType.rtpfb where v.count == RtcpFormat.nack:
                    let (_, media) = try Rtcp.feedbackSsrcs(v)
                    if let (c, layer) = consumer(transport: t, ssrc: media), consumerCold[c].nack {
                        consumers[c].counters.nack &+= 1
                        var first: UInt16 = 0, count = 0
                        try Rtcp.forEachNackedSequence(v) { seq in
                            if count == 0 { first = seq }
                            count += 1
                            retransmit(consumer: c, layer: layer, sequence: seq)
                        }
                        traceConsumer(c, .nack, incoming: true) { $0.sequenceNumber = first; $0.count = count }
                    }
                case RtcpType.rtpfb where v.count == RtcpFormat.transportCc:
                    if transports[t].sendSide >= 0 { try sendSideFeedback(v, transport: t) }
                case RtcpType.sr:
                    senderReportReceived(try Rtcp.senderInfo(v), transport: t)
                    try Rtcp.forEachReportBlock(v) { reportBlockReceived($0, transport: t) }
                case RtcpType.rr:
                    try Rtcp.forEachReportBlock(v) { reportBlockReceived($0, transport: t) }
                default:
                    break
                }
            }
        } catch {
            counters.dropRtcpMalformed &+= 1
        }
    }

    /// The consumer (and, for a layered pipe consumer, the layer) an SSRC
    /// of ours on this transport belongs to.
    @inline(__always)
    func consumer(transport t: Int, ssrc: UInt32) -> (Int, Int)? {
        guard let value = consumerSsrcTable.lookup(transport: UInt32(t), ssrc: ssrc) else { return nil }
        let c = Int(value & Self.handleMask)
        guard consumers[c].inUse else { return nil }
        return (c, Int((value >> Self.layerShift) & 0x7))
    }

    /// A key frame for what this consumer forwards (or is switching to).
    mutating func requestKeyFrame(consumer c: Int, layer: Int = 0) {
        let l = consumers[c].layered ? layer : consumers[c].simulcast ? consumers[c].layers.target : 0
        requestKeyFrame(producer: Int(consumers[c].producer), layer: l)
    }

    // MARK: - Receive side: RTX and the NACK generator

    /// RFC 4588: restores the original packet from a producer's RTX packet
    /// in place (sequence number from the payload's first two bytes, media
    /// SSRC and payload type). Padding-only probes and unknown payload
    /// types are dropped.
    mutating func unwrapRtx(_ packet: UnsafeMutableRawPointer, size: Int, _ header: RtpHeader, producer p: Int, layer: Int) -> (RtpHeader, Int)? {
        let media = producers[p].rtxPayloadTypes[header.payloadType]
        guard media != PayloadTypeMap.none, producers[p].ssrcs[layer] != 0,
              let newSize = Rtx.unwrap(packet, size: size, header, mediaPayloadType: media, mediaSsrc: producers[p].ssrcs[layer]) else {
            counters.dropNotRtp &+= 1
            return nil
        }
        guard let restored = try? RtpHeader.parse(packet, count: newSize) else {
            counters.dropMalformed &+= 1
            return nil
        }
        return (restored, newSize)
    }

    /// A gap in a producer stream's sequence: NACK it (the timer sends
    /// after a short reorder tolerance), or, for a burst too large, ask for
    /// a key frame.
    mutating func lossDetected(stream s: Int, gap: Int) {
        if gap < 0 {
            requestKeyFrame(producer: Int(receiveStreams[s].producer), layer: receiveStreams[s].layer)
            return
        }
        guard receiveStreams[s].nack.count > 0 else { return }
        if !receiveStreams[s].inNackList {
            receiveStreams[s].inNackList = true
            nackStreams[nackStreamCount] = Int32(s)
            nackStreamCount += 1
        }
        if !nackTimerArmed {
            nackTimerArmed = true
            timers.schedule(.init(kind: TimerKind.nack.rawValue, argument: 0), at: rsfu_monotonic_ns() + Self.nackIntervalNs)
        }
    }

    /// One timer for every stream with packets missing (mediasoup's 40 ms).
    static let nackIntervalNs: Int64 = 40_000_000

    mutating func nackTimerFired() {
        nackTimerArmed = false
        var i = 0
        while i < nackStreamCount {
            let s = Int(nackStreams[i])
            if receiveStreams[s].producer < 0 || receiveStreams[s].nack.count == 0 {
                receiveStreams[s].inNackList = false
                nackStreamCount -= 1
                nackStreams[i] = nackStreams[nackStreamCount]
                continue
            }
            sendNack(stream: s)
            i += 1
        }
        if nackStreamCount > 0 {
            nackTimerArmed = true
            timers.schedule(.init(kind: TimerKind.nack.rawValue, argument: 0), at: rsfu_monotonic_ns() + Self.nackIntervalNs)
        }
    }

    mutating func sendNack(stream s: Int) {
        let p = Int(receiveStreams[s].producer), layer = receiveStreams[s].layer
        var due = InlineArray<64, UInt16>(repeating: 0)
        let dueCount = receiveStreams[s].nack.due(nowNs: rsfu_monotonic_ns(), into: &due)
        guard dueCount > 0, producers[p].inUse, producers[p].ssrcs[layer] != 0 else { return }
        let slot = freeSendSlots.pop()
        guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
        let n = RtcpWriter.nack(sendSlab.slot(Int(slot)), capacity: 1200, sender: Self.feedbackSenderSsrc, media: producers[p].ssrcs[layer], count: dueCount) { due[$0] }
        producers[p].counters.nack &+= 1
        producers[p].counters.nackedPackets &+= UInt64(dueCount)
        traceProducer(p, .nack, incoming: false) { [first = due[0]] in $0.sequenceNumber = first; $0.count = dueCount }
        sendRtcp(transport: Int(producers[p].transport), slot: slot, length: n)
    }

    // MARK: - Retransmission

    /// Resends one packet a consumer's endpoint reported lost, from the
    /// store, if it is still held and was sent under the consumer's current
    /// numbering (a layered pipe consumer's numbering is the producer's).
    mutating func retransmit(consumer c: Int, layer: Int, sequence: UInt16) {
        let p = Int(consumers[c].producer)
        let l = consumers[c].layered ? layer : consumers[c].simulcast ? max(0, consumers[c].layers.current) : 0
        // A layer held back for an overrun link gets no repairs either:
        // the endpoint starts over on the lower layer's key frame.
        if consumers[c].simulcast && consumers[c].layers.holding || consumers[c].svc && consumers[c].svcLayers.holding {
            consumers[c].counters.retransmissionMisses &+= 1
            return
        }
        let stream = Int(producers[p].streams[l])
        // Only what was sent under the current numbering maps back.
        let mapped = consumers[c].layered ? sequence : consumers[c].rtp.input(forOutput: sequence)
        guard let producerSequence = mapped, consumers[c].rtp.started, consumers[c].active, stream >= 0,
              let stored = retransmissions.lookup(stream: stream, sequence: producerSequence, nowNs: turnNs,
                                                  maxAgeNs: Int64(settings.retransmissionMaxAgeMs) * (producers[p].isVideo ? 1_000_000 : 500_000)),
              let header = try? RtpHeader.parse(stored.packet, count: stored.length) else {
            consumers[c].counters.retransmissionMisses &+= 1
            return
        }
        sendToConsumer(c, stored.packet, size: stored.length, header: header, routerPt: header.payloadType, layer: l, retransmission: true)
    }

    /// Turns a consumer's packet into its RTX form (RFC 4588): the original
    /// sequence number leads the payload; RTX SSRC, payload type and
    /// sequence. Returns the new size (0: cannot).
    func wrapRtx(_ out: UnsafeMutableRawPointer, size: Int, _ c: Int, routerPt: UInt8, rtxSsrc: UInt32) -> Int {
        let rtxPt = consumerCold[c].rtxPayloadTypes[routerPt]
        guard rtxPt != PayloadTypeMap.none, let header = try? RtpHeader.parse(out, count: size) else { return 0 }
        // Room for the OSN and, later, the SRTP tag.
        return Rtx.wrap(out, size: size, capacity: settings.bufferSize - SrtpSession.maxTrailer, header,
                        rtxPayloadType: rtxPt, rtxSsrc: rtxSsrc, rtxSequence: consumerCold[c].rtxSequence)
    }

    // MARK: - Key frame requests

    /// Asks the producer's endpoint for a key frame on one layer, unless a
    /// request is already outstanding (see `KeyFrameRequester`).
    mutating func requestKeyFrame(producer p: Int, layer: Int = 0) {
        guard producers[p].inUse, producers[p].isVideo, !producers[p].paused, layer < producers[p].layerCount else { return }
        let action = producers[p].keyFrameRequests[layer].request(nowNs: rsfu_monotonic_ns())
        carryOut(action, producer: p, layer: layer)
    }

    mutating func keyFrameRetryFired(_ argument: UInt32) {
        let p = Int(argument & Self.handleMask), layer = Int((argument >> Self.layerShift) & 0x7)
        guard p < Int(settings.maxProducers), producers[p].inUse, layer < producers[p].layerCount else { return }
        let action = producers[p].keyFrameRequests[layer].retryDue(nowNs: rsfu_monotonic_ns())
        carryOut(action, producer: p, layer: layer)
    }

    mutating func carryOut(_ action: KeyFrameRequester.Action, producer p: Int, layer: Int) {
        guard case .send(let retryAt) = action else { return }
        sendKeyFrameRequest(p, layer: layer)
        timers.schedule(.init(kind: TimerKind.keyFrameRetry.rawValue, argument: UInt32(p) | UInt32(layer) << Self.layerShift), at: retryAt)
    }

    mutating func sendKeyFrameRequest(_ p: Int, layer: Int) {
        let ssrc = producers[p].ssrcs[layer]
        guard ssrc != 0 else { return } // SSRC not learnt yet
        let slot = freeSendSlots.pop()
        guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
        let out = sendSlab.slot(Int(slot))
        let n: Int
        if producerCold[p].useFir {
            producerCold[p].firSequence &+= 1
            n = RtcpWriter.fir(out, capacity: settings.bufferSize, sender: Self.feedbackSenderSsrc, target: ssrc, sequence: producerCold[p].firSequence)
            producers[p].counters.fir &+= 1
            traceProducer(p, .fir, incoming: false) { [seq = producerCold[p].firSequence] in $0.sequenceNumber = UInt16(seq); $0.ssrc = ssrc }
        } else {
            n = RtcpWriter.pli(out, capacity: settings.bufferSize, sender: Self.feedbackSenderSsrc, media: ssrc)
            producers[p].counters.pli &+= 1
            traceProducer(p, .pli, incoming: false) { $0.ssrc = ssrc }
        }
        sendRtcp(transport: Int(producers[p].transport), slot: slot, length: n)
    }

    // MARK: - Incoming bitrate limit

    mutating func setMaxIncomingBitrate(transport t: Int, _ bitrate: UInt32) {
        guard transports[t].inUse else { return }
        if transports[t].incomingLimit.set(bitrate) { mayAnnounceIncomingLimit(transport: t) }
    }

    /// Sends the transport's endpoint the REMB its `IncomingBitrateLimiter`
    /// says is due (driven by its incoming media).
    mutating func mayAnnounceIncomingLimit(transport t: Int) {
        guard let bitrate = transports[t].incomingLimit.due(nowNs: turnNs) else { return }
        let slot = freeSendSlots.pop()
        guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
        let n = RtcpWriter.remb(sendSlab.slot(Int(slot)), capacity: settings.bufferSize, sender: Self.feedbackSenderSsrc,
                                bitrate: UInt64(bitrate), ssrcCount: 0) { _ in 0 }
        sendRtcp(transport: t, slot: slot, length: n)
    }

    // MARK: - Sending

    /// Sends an RTCP packet built in a send slot to the transport's remote
    /// endpoint (SRTCP-protected where the transport has keys).
    mutating func sendRtcp(transport t: Int, slot: Int32, length: Int) {
        let out = sendSlab.slot(Int(slot))
        guard transports[t].inUse, length > 0 else { freeSendSlots.push(slot); return }
        if transports[t].direct {
            worker.onEvent(.directRtcp(transport: transports[t].handle, Array(UnsafeRawBufferPointer(start: out, count: length))))
            freeSendSlots.push(slot)
            return
        }
        // Pipes carry media one way; feedback does not cross them yet.
        guard transports[t].pipeLink < 0 else { freeSendSlots.push(slot); return }
        var size = length
        if let srtp = transports[t].srtpSend {
            guard case .ok(let n) = srtp.protectRtcp(out, length: length) else {
                counters.dropSrtpOther &+= 1
                freeSendSlots.push(slot)
                return
            }
            size = n
        } else if transports[t].srtpRequired {
            counters.dropSrtpUnavailable &+= 1 // no keys yet, or refused ones
            freeSendSlots.push(slot)
            return
        }
        let socket: Int32
        let destination: SocketAddress
        if transports[t].webrtc {
            socket = transports[t].sendSocket
            destination = transports[t].remoteRtp
        } else {
            socket = transports[t].rtcpSocket >= 0 ? transports[t].rtcpSocket : transports[t].rtpSocket
            destination = transports[t].remoteRtcp.isSet ? transports[t].remoteRtcp : transports[t].remoteRtp
        }
        guard socket >= 0, destination.isSet else { freeSendSlots.push(slot); return }
        counters.rtcpOut &+= 1
        sendRaw(slot: slot, length: size, socket: socket, to: destination)
    }
}

// MARK: - Trace events

extension ForwarderLoop {
    /// Reports a producer's trace event if it enabled the type. The check
    /// is one mask test; the event is built only when someone listens.
    @inline(__always)
    func traceProducer(_ p: Int, _ type: TraceType, incoming: Bool, _ fill: (inout TraceRecord) -> Void = { _ in }) {
        guard producers[p].traceMask & type.rawValue != 0 else { return }
        var r = TraceRecord(consumer: false, handle: producerCold[p].handle, type: type, incoming: incoming, ssrc: producers[p].ssrcs[0])
        fill(&r)
        worker.onEvent(.trace(r))
    }

    @inline(__always)
    func traceConsumer(_ c: Int, _ type: TraceType, incoming: Bool, _ fill: (inout TraceRecord) -> Void = { _ in }) {
        guard consumers[c].traceMask & type.rawValue != 0 else { return }
        var r = TraceRecord(consumer: true, handle: consumerCold[c].handle, type: type, incoming: incoming, ssrc: consumers[c].ssrc)
        fill(&r)
        worker.onEvent(.trace(r))
    }

    /// A consumer's packet as it leaves (after every rewrite).
    func traceSent(_ c: Int, _ out: UnsafeMutableRawPointer, size: Int, routerPt: UInt8) {
        guard let h = try? RtpHeader.parse(out, count: size) else { return }
        traceConsumer(c, .rtp, incoming: false) { Self.fillRtp(&$0, h, size: size) }
        let p = Int(consumers[c].producer)
        if consumers[c].traceMask & TraceType.keyframe.rawValue != 0, h.ssrc == consumers[c].ssrc,
           isKeyFrame(out, h, codec: producers[p].codecs[Int(routerPt)]) {
            traceConsumer(c, .keyframe, incoming: false) { Self.fillRtp(&$0, h, size: size) }
        }
    }

    @inline(__always)
    static func fillRtp(_ r: inout TraceRecord, _ h: RtpHeader, size: Int) {
        r.sequenceNumber = h.sequenceNumber
        r.timestamp = h.timestamp
        r.payloadType = h.payloadType
        r.marker = h.marker
        r.size = size
    }
}
