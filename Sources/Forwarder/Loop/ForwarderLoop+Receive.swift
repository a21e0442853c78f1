import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// The receive path: completions of multishot receives, demultiplexing a
/// datagram to its transport, SRTP, and the plain transports' source check.
extension ForwarderLoop {
    // MARK: - Receive

    @inline(__always)
    mutating func handleReceive(_ cqe: UnsafeMutablePointer<io_uring_cqe>, socket: Int) {
        let flags = cqe.pointee.flags
        let res = cqe.pointee.res
        let more = flags & rsfu_cqe_f_more() != 0
        if !more {
            inflightReceives -= 1
            sockets[socket].armed = false
        }
        if flags & rsfu_cqe_f_buffer() != 0 {
            let bid = Int(flags >> rsfu_cqe_buffer_shift())
            let buffer = receiveSlab.slot(bid)
            if res > 0, sockets[socket].inUse, !sockets[socket].closing {
                processDatagram(buffer: buffer, length: Int(res), socket: socket)
            }
            io_uring_buf_ring_add(bufferRing, buffer, UInt32(settings.bufferSize), UInt16(bid), bufferRingMask, pendingBufferReturns)
            pendingBufferReturns += 1
        } else if res == -ENOBUFS {
            // The receive pool ran dry: the kernel dropped a datagram.
            counters.dropRecvPoolEmpty &+= 1
        }
        if !more {
            if sockets[socket].closing {
                finishSocketClose(socket)
            } else if sockets[socket].inUse {
                counters.recvRearms &+= 1
                armReceive(socket: socket)
            }
        }
    }

    @inline(__always)
    mutating func returnBuffers() {
        if pendingBufferReturns > 0 {
            io_uring_buf_ring_advance(bufferRing, pendingBufferReturns)
            pendingBufferReturns = 0
        }
    }

    @inline(__always)
    mutating func processDatagram(buffer: UnsafeMutableRawPointer, length: Int, socket: Int) {
        guard let out = io_uring_recvmsg_validate(buffer, Int32(length), receiveHeader) else {
            counters.dropMalformed &+= 1
            return
        }
        if out.pointee.flags & UInt32(MSG_TRUNC) != 0 {
            counters.dropTruncated &+= 1
            return
        }
        let payload = io_uring_recvmsg_payload(out, receiveHeader)!
        let size = Int(io_uring_recvmsg_payload_length(out, Int32(length), receiveHeader))
        let name = io_uring_recvmsg_name(out)!
        let nameLength = Int(out.pointee.namelen)
        if out.pointee.controllen > 0 {
            let drops = rsfu_rxq_ovfl(out, receiveHeader)
            if drops >= 0 {
                let total = UInt32(truncatingIfNeeded: drops)
                counters.dropSocketOverflow &+= UInt64(total &- sockets[socket].kernelDrops)
                sockets[socket].kernelDrops = total
            }
        }
        counters.packetsIn &+= 1
        counters.bytesIn &+= UInt64(size)

        if sockets[socket].server >= 0 {
            receiveOnServer(payload, size: size, socket: socket, name: name, nameLength: nameLength)
            return
        }
        let t = Int(sockets[socket].transport)
        transports[t].counters.packets &+= 1
        transports[t].counters.bytes &+= UInt64(size)
        if transports[t].webrtc {
            processWebRtc(payload, size: size, transport: t, socket: socket, name: name, nameLength: nameLength)
            return
        }

        let kind = PacketClass.classify(payload, count: size)
        guard kind == .rtp || kind == .rtcp else {
            // SCTP over plain UDP (mediasoup's rule: ports 5000 to 5000).
            if transports[t].rawSctp, size >= 12, readUInt16(payload, 0) == 5000, readUInt16(payload, 2) == 5000 {
                // From a stranger: counted by acceptSource and dropped.
                if acceptSource(transport: t, rtcp: false, name: name, nameLength: nameLength) {
                    handOverSctp(t, payload, size)
                }
                return
            }
            counters.dropNotRtp &+= 1
            return
        }
        guard acceptSource(transport: t, rtcp: sockets[socket].isRtcp, name: name, nameLength: nameLength) else { return }
        receiveMedia(payload, size: size, transport: t, rtcp: kind == .rtcp)
    }

    /// RTP or RTCP from a transport's remote: decrypted in place when the
    /// transport has SRTP (failures counted and dropped), then routed.
    @inline(__always)
    mutating func receiveMedia(_ packet: UnsafeMutableRawPointer, size: Int, transport t: Int, rtcp: Bool) {
        var length = size
        if let srtp = transports[t].srtpReceive {
            switch rtcp ? srtp.unprotectRtcp(packet, length: size) : srtp.unprotect(packet, length: size) {
            case .ok(let n): length = n
            case .failed(let error):
                countSrtpFailure(error)
                return
            }
        } else if transports[t].srtpRequired {
            counters.dropNotReady &+= 1 // no key yet (or a refused one): never taken as plain
            return
        }
        if rtcp { receiveRtcp(packet, size: length, transport: t) } else { forwardRtp(packet, size: length, transport: t) }
    }

    /// Plain transports take packets only from their remote tuple; with
    /// comedia the first packet's source becomes that tuple.
    @inline(__always)
    mutating func acceptSource(transport t: Int, rtcp: Bool, name: UnsafeMutableRawPointer, nameLength: Int) -> Bool {
        if rtcp {
            if transports[t].remoteRtcp.isSet {
                if transports[t].remoteRtcp.sameEndpoint(raw: name, length: nameLength) { return true }
            } else if transports[t].comedia {
                transports[t].remoteRtcp = SocketAddress(raw: name, length: nameLength)
                worker.onEvent(.tupleLearned(transport: transports[t].handle, rtcp: true, transports[t].remoteRtcp))
                return true
            }
        } else {
            if transports[t].remoteRtp.isSet {
                if transports[t].remoteRtp.sameEndpoint(raw: name, length: nameLength) { return true }
            } else if transports[t].comedia {
                transports[t].remoteRtp = SocketAddress(raw: name, length: nameLength)
                if transports[t].rtcpSocket < 0 { transports[t].remoteRtcp = transports[t].remoteRtp }
                worker.onEvent(.tupleLearned(transport: transports[t].handle, rtcp: false, transports[t].remoteRtp))
                return true
            }
        }
        counters.dropUnknownSource &+= 1
        return false
    }

    @inline(__always)
    mutating func countSrtpFailure(_ error: SrtpError) {
        switch error {
        case .authFailure: counters.dropSrtpAuth &+= 1
        case .replay: counters.dropSrtpReplay &+= 1
        default: counters.dropSrtpOther &+= 1
        }
    }
}
