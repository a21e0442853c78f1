import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// The send path: a consumer's copy of a packet rewritten into a send slot
/// (SSRC, payload type, numbering, extensions, MID, RTX), protected with
/// SRTP, and batched per consumer into GSO messages submitted once a turn.
extension ForwarderLoop {
    @inline(__always)
    mutating func sendToConsumer(_ ci: Int, _ packet: UnsafeMutableRawPointer, size: Int, header: RtpHeader, routerPt: UInt8, layer: Int = 0, retransmission: Bool = false,
                                 marker: Bool? = nil) {
        let t = Int(consumers[ci].transport)
        guard transports[t].remoteRtp.isSet || transports[t].direct || transports[t].pipeLink >= 0 else { return }
        // Never plain RTP where SRTP is due: wait for keys (DTLS or the
        // application's), and send nothing if they were refused.
        if transports[t].srtpRequired && transports[t].srtpSend == nil {
            counters.dropSrtpUnavailable &+= 1
            return
        }
        let outPt = consumers[ci].payloadTypes[routerPt]
        guard outPt != PayloadTypeMap.none else { return }
        // A layered pipe consumer keeps the producer's numbering.
        let seq: UInt16
        if consumers[ci].layered {
            seq = header.sequenceNumber
        } else {
            guard let mapped = consumers[ci].rtp.output(for: header.sequenceNumber) else {
                consumers[ci].counters.dropped &+= 1 // older than the numbering remembers
                return
            }
            seq = mapped
        }
        let slot = freeSendSlots.pop()
        guard slot >= 0 else {
            counters.dropSendPoolEmpty &+= 1
            consumers[ci].counters.dropped &+= 1
            return
        }
        let out = sendSlab.slot(Int(slot))
        out.copyMemory(from: packet, byteCount: size)
        if consumers[ci].simulcast || consumers[ci].temporal.rewriting, header.payloadLength > 0,
           producers[Int(consumers[ci].producer)].codecs[Int(routerPt & 0x7F)] == KeyFrameCodec.vp8.rawValue,
           !consumers[ci].vp8.rewrite(out + header.payloadOffset, count: header.payloadLength) {
            counters.dropMalformed &+= 1
            freeSendSlots.push(slot)
            return
        }
        RtpRewrite.setSsrc(out, consumers[ci].layered ? consumerCold[ci].layerSsrcs[layer] : consumers[ci].ssrc)
        RtpRewrite.setPayloadType(out, outPt)
        if let marker { RtpRewrite.setMarker(out, marker) }
        RtpRewrite.setSequenceNumber(out, seq)
        let timestamp = consumers[ci].rtp.timestamp(for: header.timestamp)
        if timestamp != header.timestamp { RtpRewrite.setTimestamp(out, timestamp) }
        // The producer stage already validated the extension block. The
        // same walk finds the transport-wide element where the transport numbers its packets.
        let numbering = consumers[ci].transportWide && transports[t].sendSide >= 0 ? transports[t].sendSideExtensionId : 0
        let transportWideOffset = (try? RtpHeaderExtensions.remapIds(out, header, (consumers + ci).pointer(to: \.extensionIds)!, find: numbering)) ?? -1
        var size = size
        // Before the MID rewrite, which may move the extension elements.
        if transportWideOffset >= 0 { numberTransportWide(out, at: transportWideOffset, transport: t, size: size) }
        if consumers[ci].midExtensionId != 0 { size = rewriteMid(out, header, ci, size: size) }
        if retransmission {
            let rtxSsrc = consumers[ci].layered ? consumerCold[ci].layerRtxSsrcs[layer] : consumerCold[ci].rtxSsrc
            if rtxSsrc != 0 {
                size = wrapRtx(out, size: size, ci, routerPt: routerPt, rtxSsrc: rtxSsrc)
                guard size > 0 else { freeSendSlots.push(slot); return }
                consumerCold[ci].rtxSequence &+= 1
            }
            consumers[ci].counters.retransmitted &+= 1
            counters.retransmitted &+= 1
        } else {
            consumers[ci].rtp.sent(output: seq, timestamp: timestamp, nowNs: turnNs)
        }
        consumers[ci].counters.packetsOut &+= 1
        consumers[ci].counters.bytesOut &+= UInt64(size)
        if consumers[ci].traceMask != 0 { traceSent(ci, out, size: size, routerPt: routerPt) }
        transports[t].counters.packetsOut &+= 1
        transports[t].counters.bytesOut &+= UInt64(size)
        if transports[t].pipeLink >= 0 {
            sendToPipe(t, out, size: size)
            freeSendSlots.push(slot)
            return
        }
        if transports[t].direct {
            // The application's copy: an allocation, as on any path that
            // leaves the forwarder for the control plane (not the socket path).
            worker.onEvent(.directRtp(consumer: consumerCold[ci].handle, Array(UnsafeRawBufferPointer(start: out, count: size))))
            counters.packetsOut &+= 1
            counters.bytesOut &+= UInt64(size)
            freeSendSlots.push(slot)
            return
        }
        var length = size
        if let srtp = transports[t].srtpSend {
            // Encrypted straight into the send slot (2 KiB: room for the tag).
            guard case .ok(let n) = srtp.protect(out, length: size) else {
                counters.dropSrtpOther &+= 1
                freeSendSlots.push(slot)
                return
            }
            length = n
        }
        enqueue(consumer: ci, slot: slot, data: out, length: length, transport: t)
    }

    /// Puts the consumer's MID in a packet leaving it (see `MidRewriter`).
    @inline(__always)
    func rewriteMid(_ out: UnsafeMutableRawPointer, _ header: RtpHeader, _ ci: Int, size: Int) -> Int {
        MidRewriter.rewrite(out, header, id: consumers[ci].midExtensionId, mid: consumers[ci].mid, midLength: consumers[ci].midLength,
                            size: size, capacity: settings.bufferSize - SrtpSession.maxTrailer)
    }

    /// Adds a packet to the consumer's send of this loop turn, starting a
    /// new one when it cannot join the current GSO batch.
    @inline(__always)
    mutating func enqueue(consumer ci: Int, slot: Int32, data: UnsafeMutableRawPointer, length: Int, transport t: Int) {
        let socket = Int(transports[t].sendSocket)
        guard socket >= 0 else { freeSendSlots.push(slot); return }
        if sockets[socket].kind == .tcpConnection {
            tcpWrite(socket: socket, data, length: length)
            freeSendSlots.push(slot)
            return
        }
        var m = consumers[ci].pendingMessage
        if m >= 0, !SendMessage(messageSlab.slot(Int(m))).accepts(length: length, maxSegments: maxSegments) {
            m = -1
        }
        if m < 0 {
            m = freeMessages.pop()
            guard m >= 0 else {
                counters.dropSendPoolEmpty &+= 1
                freeSendSlots.push(slot)
                consumers[ci].pendingMessage = -1
                return
            }
            SendMessage(messageSlab.slot(Int(m))).begin(destination: transports[t].remoteRtp, socket: Int32(socket), consumer: Int32(ci))
            openMessages[openMessageCount] = m
            openMessageCount += 1
            consumers[ci].pendingMessage = m
        }
        SendMessage(messageSlab.slot(Int(m))).append(slot: slot, data: data, length: length)
    }

    /// Queues one SENDMSG per open message; the loop submits them all with
    /// its next io_uring_enter.
    @inline(__always)
    mutating func flushSends() {
        if tcpDirtyCount > 0 { flushTcp() }
        guard openMessageCount > 0 else { return }
        for i in 0..<openMessageCount {
            let m = Int(openMessages[i])
            let msg = SendMessage(messageSlab.slot(m))
            msg.seal()
            let s = sqe()
            io_uring_prep_sendmsg(s, sockets[Int(msg.socket)].fd, msg.header, 0)
            io_uring_sqe_set_data64(s, userData(.send, m))
            inflightSends += 1
            counters.sendCalls &+= 1
            // Sealed: the consumer's next packet starts a new message.
            let c = Int(msg.consumer)
            if c >= 0, consumers[c].pendingMessage == Int32(m) { consumers[c].pendingMessage = -1 }
        }
        openMessageCount = 0
    }

    mutating func handleSendCompletion(message m: Int, result: Int32) {
        inflightSends -= 1
        let msg = SendMessage(messageSlab.slot(m))
        let n = Int(msg.segmentCount)
        if result >= 0 {
            counters.packetsOut &+= UInt64(n)
            counters.bytesOut &+= UInt64(result)
        } else {
            counters.dropSendError &+= UInt64(n)
            // Some devices cannot segment: fall back to one packet per send.
            if result == -EIO && n > 1 { maxSegments = 1 }
        }
        for i in 0..<n { freeSendSlots.push(msg.slots[i]) }
        freeMessages.push(Int32(m))
    }
}
