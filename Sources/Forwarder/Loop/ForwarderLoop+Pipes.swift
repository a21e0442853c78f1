import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// In-process pipes between workers (`pipeToRouter`): a pipe consumer's
/// packets are copied into a single-producer single-consumer ring; the peer
/// worker is woken through its eventfd once per loop turn and routes them
/// as if they had arrived on its end of the pipe.
extension ForwarderLoop {
    @inline(__always)
    mutating func sendToPipe(_ t: Int, _ packet: UnsafeMutableRawPointer, size: Int) {
        let link = Int(transports[t].pipeLink)
        guard let ring = outboundPipes[link] else { return }
        if ring.push(transport: transports[t].pipePeer.raw, packet, length: size) {
            outboundPushed[link] = true
            pipesPushed = true
            counters.packetsOut &+= 1
            counters.bytesOut &+= UInt64(size)
        } else {
            counters.dropPipeFull &+= 1
        }
    }

    /// One eventfd write per peer that got packets this turn.
    @inline(__always)
    mutating func wakePipePeers() {
        guard pipesPushed else { return }
        pipesPushed = false
        for i in 0..<Int(settings.maxPipeLinks) where outboundPushed[i] {
            outboundPushed[i] = false
            guard let ring = outboundPipes[i] else { continue }
            var one: UInt64 = 1
            _ = write(ring.consumerEventFd, &one, 8)
        }
    }

    /// Routes every packet waiting in the rings towards this worker.
    mutating func drainPipes() {
        for i in 0..<inboundPipeCount {
            guard let ring = inboundPipes[i] else { continue }
            ring.drain { transport, packet, length in
                receivePiped(transport: Handle(raw: transport), packet, length: length)
            }
        }
    }

    @inline(__always)
    mutating func receivePiped(transport handle: Handle, _ packet: UnsafeMutableRawPointer, length: Int) {
        let t = handle.index
        // A packet for a pipe transport closed (and its row reused) since.
        guard t < Int(settings.maxTransports), transports[t].inUse, transports[t].handle == handle, transports[t].pipeLink >= 0 else {
            counters.dropUnknownSource &+= 1
            return
        }
        counters.packetsIn &+= 1
        counters.bytesIn &+= UInt64(length)
        transports[t].counters.packets &+= 1
        transports[t].counters.bytes &+= UInt64(length)
        switch PacketClass.classify(packet, count: length) {
        case .rtp: forwardRtp(packet, size: length, transport: t)
        case .rtcp: receiveRtcp(packet, size: length, transport: t)
        default: counters.dropNotRtp &+= 1
        }
    }

    mutating func addOutboundPipe(_ index: Int, _ ring: PipeRing) {
        guard index < Int(settings.maxPipeLinks) else { return }
        outboundPipes[index] = ring
    }

    mutating func addInboundPipe(_ ring: PipeRing) {
        guard inboundPipeCount < Int(settings.maxPipeLinks) else { return }
        inboundPipes[inboundPipeCount] = ring
        inboundPipeCount += 1
    }
}
