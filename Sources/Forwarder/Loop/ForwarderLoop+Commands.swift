import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// Applying control commands, and tearing entities down. The forwarder
/// frees state in the same cascade order as the control plane emits events
/// (router -> transports -> producers -> their consumers, then consumers),
/// but it never decides a cascade on its own.
extension ForwarderLoop {
    mutating func applyCommands() {
        let batch = worker.commands.withLock { q -> [ForwarderCommand] in
            defer { q.items.removeAll(keepingCapacity: true) }
            return q.items
        }
        for command in batch { apply(command) }
    }

    mutating func apply(_ command: ForwarderCommand) {
        switch command {
        case .addRouter(let h):
            routers[h.index] = RouterState(inUse: true, firstTransport: -1)
        case .closeRouter(let h):
            closeRouter(h.index)
        case let .addPlainTransport(h, router, rtpFd, rtcpFd, comedia):
            addTransport(h.index, router: router.index, rtpFd: Optional(rtpFd), rtcpFd: rtcpFd, comedia: comedia)
            transports[h.index].handle = h
        case let .addWebRtcTransport(h, router, fd, tcpFd, credentials):
            addWebRtcTransport(h.index, router: router.index, fd: fd, tcpFd: tcpFd, credentials)
            transports[h.index].handle = h
        case let .connectWebRtcTransport(h, client, algorithm, fingerprint):
            connectWebRtc(h.index, client: client, algorithm: algorithm, fingerprint: fingerprint)
        case let .restartIce(h, credentials):
            restartIce(h.index, credentials)
            if transports[h.index].server >= 0 { registerUfrag(h.index, credentials.usernameFragment) }
        case let .addWebRtcServer(h, fd, tcpFd):
            addWebRtcServer(h.index, fd: fd, tcpFd: tcpFd)
        case .closeWebRtcServer(let h):
            closeWebRtcServer(h.index)
        case let .addServerWebRtcTransport(h, router, server, credentials):
            addServerWebRtcTransport(h.index, router: router.index, server: server.index, credentials)
            if transports[h.index].inUse { transports[h.index].handle = h }
        case let .addDirectTransport(h, router):
            addTransport(h.index, router: router.index, rtpFd: nil, rtcpFd: nil, comedia: false)
            transports[h.index].handle = h
            transports[h.index].direct = true
        case let .injectRtp(t, bytes):
            injectRtp(transport: t.index, bytes)
        case let .connectTransport(h, rtp, rtcp):
            guard transports[h.index].inUse else { return }
            transports[h.index].remoteRtp = rtp
            transports[h.index].remoteRtcp = rtcp ?? (transports[h.index].rtcpSocket < 0 ? rtp : SocketAddress())
        case .closeTransport(let h):
            closeTransport(h.index)
        case let .setTransportSrtp(h, send, receive):
            guard transports[h.index].inUse else { return }
            transports[h.index].srtpRequired = true
            if let send {
                if let old = transports[h.index].srtpSend { old.free() }
                transports[h.index].srtpSend = SrtpContext(send, outbound: true)
                if transports[h.index].srtpSend == nil { srtpFailed(h.index, "the send key was refused by libsrtp") }
            }
            if let receive {
                if let old = transports[h.index].srtpReceive { old.free() }
                transports[h.index].srtpReceive = SrtpContext(receive, outbound: false)
                if transports[h.index].srtpReceive == nil { srtpFailed(h.index, "the receive key was refused by libsrtp") }
            }
        case let .addProducer(h, t, spec):
            addProducer(h.index, transport: t.index, spec)
            if producers[h.index].inUse { producerCold[h.index].handle = h }
        case .closeProducer(let h):
            closeProducer(h.index)
        case let .setProducerPaused(h, paused):
            guard producers[h.index].inUse else { return }
            producers[h.index].paused = paused
            // As in mediasoup's worker, the producer tells its consumers.
            var c = producers[h.index].firstConsumer
            while c >= 0 {
                setConsumer(Int(c)) { $0.producerPaused = paused }
                c = consumers[Int(c)].nextInProducer
            }
        case let .addConsumer(h, t, p, spec):
            addConsumer(h.index, transport: t.index, producer: p.index, spec)
            if consumers[h.index].inUse { consumerCold[h.index].handle = h }
        case .closeConsumer(let h):
            closeConsumer(h.index)
        case let .setConsumerPaused(h, paused):
            setConsumer(h.index) { $0.paused = paused }
        case let .setProducerTrace(h, mask):
            if producers[h.index].inUse { producers[h.index].traceMask = mask }
        case let .setConsumerTrace(h, mask):
            if consumers[h.index].inUse { consumers[h.index].traceMask = mask }
        case .requestKeyFrame(let h):
            if consumers[h.index].inUse { requestKeyFrame(consumer: h.index) }
        case let .enableSctp(h):
            guard transports[h.index].inUse else { return }
            if transports[h.index].webrtc { webrtc[h.index].sctp = true } else { transports[h.index].rawSctp = true }
        case let .sendSctp(h, packet):
            sendSctp(transport: h.index, packet)
        case let .setMaxIncomingBitrate(h, bitrate):
            setMaxIncomingBitrate(transport: h.index, bitrate)
        case let .setTransportTrace(h, bwe):
            if transports[h.index].inUse { transports[h.index].traceBwe = bwe }
        case let .setOutgoingBitrateBounds(h, min, max):
            guard transports[h.index].inUse else { break }
            transports[h.index].outgoingMin = min
            transports[h.index].outgoingMax = max
            applyOutgoingBounds(transport: h.index)
        case let .setConsumerPreferredLayers(h, layer, temporal):
            guard consumers[h.index].inUse else { return }
            consumers[h.index].temporal.target = temporal
            if consumers[h.index].svc {
                consumers[h.index].svcPreferred = UInt8(clamping: layer)
                consumers[h.index].svcLayers.setTarget(spatial: min(UInt8(clamping: layer), consumers[h.index].svcLimit), temporal: temporal)
            }
            guard consumers[h.index].simulcast else { return }
            let p = Int(consumers[h.index].producer)
            consumers[h.index].layers.preferred = max(0, min(producers[p].layerCount - 1, layer))
            updateTargetLayer(h.index)
        case let .setConsumerPriority(h, priority):
            guard consumers[h.index].inUse else { return }
            consumerCold[h.index].priority = max(1, priority)
            let t = Int(consumers[h.index].transport)
            if transports[t].sendSide >= 0 { allocateLayers(transport: t) }
        case let .stats(target, reply):
            switch target {
            case .transport(let h): reply(transports[h.index].inUse ? transports[h.index].counters : EntityCounters())
            case .producer(let h): reply(producerFigures(h.index))
            case let .producerLayer(h, layer): reply(producerFigures(h.index, layer: layer))
            case .consumer(let h): reply(consumerFigures(h.index))
            }
        case .counters(let reply):
            reply(counters, resources())
        case .transportFigures(let reply):
            // One array per export, off the packet path.
            var figures: [(Handle, EntityCounters)] = []
            for t in 0..<Int(settings.maxTransports) where transports[t].inUse { figures.append((transports[t].handle, transports[t].counters)) }
            reply(figures)
        case .barrier(let reply):
            reply()
        case let .addOutboundPipe(index, ring):
            addOutboundPipe(Int(index), ring)
        case .addInboundPipe(let ring):
            addInboundPipe(ring)
        case let .addPipeTransport(h, router, link, peer):
            addTransport(h.index, router: router.index, rtpFd: nil, rtcpFd: nil, comedia: false)
            transports[h.index].handle = h
            transports[h.index].pipeLink = Int32(link)
            transports[h.index].pipePeer = peer
        case let .addAudioLevelObserver(h, router, interval):
            addObserver(h.index, router: router.index, intervalMs: interval)
            observers[h.index].handle = h
        case .closeObserver(let h):
            closeObserver(h.index)
        case let .observerAddProducer(o, p):
            observerAddProducer(o.index, p.index)
        case let .observerRemoveProducer(o, p):
            observerRemoveProducer(o.index, p.index)
        case let .setObserverPaused(h, paused):
            if observers[h.index].inUse { observers[h.index].paused = paused }
        case .simulateFatalError:
            fatalReason = "simulated fatal ring error"
        }
    }

    /// Replies to commands that can no longer reach a running loop.
    static func answerWithoutLoop(_ commands: [ForwarderCommand]) {
        for command in commands {
            switch command {
            case .stats(_, let reply): reply(EntityCounters())
            case .counters(let reply): reply(ForwarderCounters(), ForwarderResources())
            case .transportFigures(let reply): reply([])
            case .barrier(let reply): reply()
            case let .addPlainTransport(_, _, rtpFd, rtcpFd, _):
                // The loop never took these sockets: release them here.
                close(rtpFd)
                if let rtcpFd { close(rtcpFd) }
            case let .addWebRtcTransport(_, _, fd, tcpFd, _), let .addWebRtcServer(_, fd, tcpFd):
                if let fd { close(fd) }
                if let tcpFd { close(tcpFd) }
            default: break
            }
        }
    }

    func resources() -> ForwarderResources {
        var r = ForwarderResources()
        for i in 0..<Int(settings.maxRouters) where routers[i].inUse { r.routers += 1 }
        for i in 0..<Int(settings.maxTransports) where transports[i].inUse { r.transports += 1 }
        for i in 0..<Int(settings.maxProducers) where producers[i].inUse { r.producers += 1 }
        for i in 0..<Int(settings.maxConsumers) where consumers[i].inUse { r.consumers += 1 }
        r.sockets = socketCapacity - freeSockets.available
        r.tcpConnections = freeTcpConns.capacity - freeTcpConns.available
        r.ssrcEntries = ssrcTable.count
        r.freeSendSlots = freeSendSlots.available
        r.sendSlots = freeSendSlots.capacity
        r.freeMessages = freeMessages.available
        r.messages = freeMessages.capacity
        r.timers = timers.activeCount
        return r
    }

    // MARK: - Transports and sockets

    mutating func addTransport(_ h: Int, router r: Int, rtpFd: Int32?, rtcpFd: Int32?, comedia: Bool) {
        var t = TransportState()
        t.inUse = true
        t.router = UInt32(r)
        t.comedia = comedia
        if let rtpFd { t.rtpSocket = adoptSocket(rtpFd, transport: h, rtcp: false) }
        t.sendSocket = t.rtpSocket
        if let rtcpFd { t.rtcpSocket = adoptSocket(rtcpFd, transport: h, rtcp: true) }
        t.nextInRouter = routers[r].firstTransport
        if t.nextInRouter >= 0 { transports[Int(t.nextInRouter)].prevInRouter = Int32(h) }
        routers[r].firstTransport = Int32(h)
        transports[h] = t
    }

    /// An application packet on a direct transport: copied into scratch
    /// memory (a command's bytes are immutable) and routed like a received one.
    mutating func injectRtp(transport t: Int, _ bytes: [UInt8]) {
        guard transports[t].inUse, transports[t].direct else { return }
        guard bytes.count <= settings.bufferSize else {
            counters.dropTruncated &+= 1
            return
        }
        counters.packetsIn &+= 1
        counters.bytesIn &+= UInt64(bytes.count)
        transports[t].counters.packets &+= 1
        transports[t].counters.bytes &+= UInt64(bytes.count)
        let scratch = receiveScratch
        bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress { scratch.copyMemory(from: base, byteCount: raw.count) }
        }
        switch PacketClass.classify(scratch, count: bytes.count) {
        case .rtp: forwardRtp(scratch, size: bytes.count, transport: t)
        case .rtcp: receiveRtcp(scratch, size: bytes.count, transport: t)
        default: counters.dropNotRtp &+= 1
        }
    }

    mutating func adoptSocket(_ fd: Int32, transport: Int, rtcp: Bool) -> Int32 {
        let s = freeSockets.pop()
        guard s >= 0 else { close(fd); return -1 }
        sockets[Int(s)] = SocketState(inUse: true, fd: fd, transport: UInt32(transport), isRtcp: rtcp, closing: false, armed: false)
        _ = rsfu_enable_rxq_ovfl(fd)
        armReceive(socket: Int(s))
        return s
    }

    /// Cancels the socket's multishot receive; the fd is closed (and the
    /// port released) when the final completion for it arrives.
    mutating func beginSocketClose(_ s: Int32) {
        guard s >= 0, sockets[Int(s)].inUse, !sockets[Int(s)].closing else { return }
        if sockets[Int(s)].kind == .tcpConnection { closeTcpConnection(Int(s)); return }
        sockets[Int(s)].closing = true
        if sockets[Int(s)].armed {
            let e = sqe()
            io_uring_prep_cancel64(e, userData(sockets[Int(s)].kind == .tcpListener ? .accept : .receive, Int(s)), 0)
            io_uring_sqe_set_data64(e, userData(.cancel, Int(s)))
        } else {
            finishSocketClose(Int(s))
        }
    }

    mutating func finishSocketClose(_ s: Int) {
        close(sockets[s].fd)
        sockets[s] = SocketState()
        freeSockets.push(Int32(s))
    }

    mutating func closeRouter(_ r: Int) {
        guard routers[r].inUse else { return }
        for o in 0..<Int(settings.maxObservers) where observers[o].inUse && observers[o].router == UInt32(r) { closeObserver(o) }
        while routers[r].firstTransport >= 0 { closeTransport(Int(routers[r].firstTransport)) }
        routers[r] = RouterState()
    }

    mutating func srtpFailed(_ t: Int, _ reason: String) {
        worker.onEvent(.srtpFailed(transport: transports[t].handle, reason))
    }

    mutating func closeTransport(_ h: Int) {
        guard transports[h].inUse else { return }
        while transports[h].firstProducer >= 0 { closeProducer(Int(transports[h].firstProducer)) }
        while transports[h].firstConsumer >= 0 { closeConsumer(Int(transports[h].firstConsumer)) }
        if transports[h].webrtc, webrtc[h].dtlsState == .connected, let d = webrtc[h].dtls {
            // close_notify before the socket goes: the endpoint learns now
            // that the transport closed, not from a consent timeout.
            d.close()
            afterDtls(h, .pending)
        }
        // A server transport shares the server's socket: never close that here.
        if transports[h].server >= 0 { unregisterServerTransport(h) }
        beginSocketClose(transports[h].rtpSocket)
        beginSocketClose(transports[h].rtcpSocket)
        beginSocketClose(transports[h].tcpListener)
        closeTcpConnections(transport: h)
        if transports[h].webrtc { closeWebRtc(h) }
        if let s = transports[h].srtpSend { s.free() }
        if let s = transports[h].srtpReceive { s.free() }
        disableFeedback(transport: h)
        disableSendSide(transport: h)
        let r = Int(transports[h].router)
        let prev = transports[h].prevInRouter, next = transports[h].nextInRouter
        if prev >= 0 { transports[Int(prev)].nextInRouter = next } else { routers[r].firstTransport = next }
        if next >= 0 { transports[Int(next)].prevInRouter = prev }
        transports[h] = TransportState()
    }

    // MARK: - Shutdown

    /// Closes every socket, waits (bounded) for in-flight operations so the
    /// kernel no longer references packet memory, then tears the ring down.
    mutating func shutdown() {
        for r in 0..<Int(settings.maxRouters) where routers[r].inUse { closeRouter(r) }
        for t in 0..<Int(settings.maxTransports) where transports[t].inUse { closeTransport(t) }
        if wakeArmed {
            let e = sqe()
            io_uring_prep_cancel64(e, userData(.wake, 0), 0)
            io_uring_sqe_set_data64(e, userData(.cancel, 0))
        }
        let deadline = rsfu_monotonic_ns() + 1_000_000_000
        var ts = __kernel_timespec(tv_sec: 0, tv_nsec: 50_000_000)
        while (inflightSends > 0 || inflightReceives > 0 || wakeArmed) && rsfu_monotonic_ns() < deadline {
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            _ = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            while io_uring_peek_cqe(ring, &cqe) == 0, let c = cqe {
                let data = c.pointee.user_data
                if data >> 56 == OpTag.wake.rawValue { wakeArmed = false } else { handle(c) }
                io_uring_cqe_seen(ring, c)
            }
            returnBuffers()
        }
        // Whatever is still open (e.g. a socket whose cancel never completed).
        for s in 0..<socketCapacity where sockets[s].inUse { finishSocketClose(s) }
        _ = io_uring_unregister_buf_ring(ring, Int32(Self.bufferGroup))
        io_uring_queue_exit(ring)
    }
}
