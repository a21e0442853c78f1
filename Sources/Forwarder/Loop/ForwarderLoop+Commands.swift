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
                if let old = transports[h.index].srtpSend { srtp_dealloc(old) }
                transports[h.index].srtpSend = SrtpRaw.create(send, outbound: true)
                if transports[h.index].srtpSend == nil { srtpFailed(h.index, "the send key was refused by libsrtp") }
            }
            if let receive {
                if let old = transports[h.index].srtpReceive { srtp_dealloc(old) }
                transports[h.index].srtpReceive = SrtpRaw.create(receive, outbound: false)
                if transports[h.index].srtpReceive == nil { srtpFailed(h.index, "the receive key was refused by libsrtp") }
            }
        case let .addProducer(h, t, spec):
            addProducer(h.index, transport: t.index, spec)
            if producers[h.index].inUse { producers[h.index].handle = h }
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
            if consumers[h.index].inUse { consumers[h.index].handle = h }
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
        case let .setConsumerPreferredLayer(h, layer):
            guard consumers[h.index].inUse, consumers[h.index].simulcast else { return }
            let p = Int(consumers[h.index].producer)
            consumers[h.index].preferredLayer = max(0, min(producers[p].layerCount - 1, layer))
            updateTargetLayer(h.index)
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
        // A server transport shares the server's socket: never close that here.
        if transports[h].server >= 0 { unregisterServerTransport(h) }
        beginSocketClose(transports[h].rtpSocket)
        beginSocketClose(transports[h].rtcpSocket)
        beginSocketClose(transports[h].tcpListener)
        closeTcpConnections(transport: h)
        if transports[h].webrtc { closeWebRtc(h) }
        if let s = transports[h].srtpSend { srtp_dealloc(s) }
        if let s = transports[h].srtpReceive { srtp_dealloc(s) }
        disableFeedback(transport: h)
        let r = Int(transports[h].router)
        let prev = transports[h].prevInRouter, next = transports[h].nextInRouter
        if prev >= 0 { transports[Int(prev)].nextInRouter = next } else { routers[r].firstTransport = next }
        if next >= 0 { transports[Int(next)].prevInRouter = prev }
        transports[h] = TransportState()
    }

    // MARK: - Producers and consumers

    mutating func addProducer(_ h: Int, transport t: Int, _ spec: ProducerSpec) {
        guard transports[t].inUse else { return }
        var p = ProducerState()
        p.inUse = true
        p.transport = UInt32(t)
        p.isVideo = spec.isVideo
        p.paused = spec.paused
        p.payloadTypes = PayloadTypeMap(pairs: spec.payloadTypes)
        for (pt, codec) in spec.codecs where pt < 128 { p.codecs[Int(pt)] = codec.rawValue }
        p.extensionIds = ExtensionIdMap(pairs: spec.extensionIds)
        p.audioLevelId = spec.audioLevelId
        p.useFir = spec.useFir
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
                p.ridKeys[layer] = spec.rids[layer].withUnsafeBytes { ForwarderLoop.valueKey($0.baseAddress!, $0.count) }
                ridTable.insert(transport: UInt32(t), ssrc: p.ridKeys[layer], value: value)
            }
        }
        ensureReportTimer()
        if spec.midExtensionId != 0 { transports[t].midExtensionId = spec.midExtensionId }
        if spec.ridExtensionId != 0 { transports[t].ridExtensionId = spec.ridExtensionId }
        if spec.rridExtensionId != 0 { transports[t].rridExtensionId = spec.rridExtensionId }
        enableFeedback(transport: t, spec)
        if !spec.mid.isEmpty {
            p.midKey = spec.mid.withUnsafeBytes { ForwarderLoop.valueKey($0.baseAddress!, $0.count) }
            midTable.insert(transport: UInt32(t), ssrc: p.midKey, value: UInt32(h))
        }
        p.nextInTransport = transports[t].firstProducer
        if p.nextInTransport >= 0 { producers[Int(p.nextInTransport)].prevInTransport = Int32(h) }
        transports[t].firstProducer = Int32(h)
        producers[h] = p
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
            if producers[h].ridKeys[layer] != 0 { ridTable.remove(transport: UInt32(t), ssrc: producers[h].ridKeys[layer]) }
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
        if producers[h].midKey != 0 { midTable.remove(transport: UInt32(t), ssrc: producers[h].midKey) }
        let prev = producers[h].prevInTransport, next = producers[h].nextInTransport
        if prev >= 0 { producers[Int(prev)].nextInTransport = next } else { transports[t].firstProducer = next }
        if next >= 0 { producers[Int(next)].prevInTransport = prev }
        producers[h] = ProducerState()
    }

    mutating func addConsumer(_ h: Int, transport t: Int, producer p: Int, _ spec: ConsumerSpec) {
        guard transports[t].inUse, producers[p].inUse else { return }
        var c = ConsumerState()
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
        c.paused = spec.paused
        c.producerPaused = spec.producerPaused
        c.waitsForKeyFrame = spec.waitsForKeyFrame
        c.nack = spec.nack
        if spec.nack { producers[p].nackConsumers += 1 }
        c.rtxSsrc = spec.rtxSsrc
        c.rtxPayloadTypes = PayloadTypeMap(pairs: spec.rtxPayloadTypes)
        c.rtxSequence = UInt16.random(in: 0...0x7FFF)
        c.cnameLength = min(spec.cname.count, 64)
        for i in 0..<c.cnameLength { c.cname[i] = spec.cname[i] }
        let layers = producers[p].layerCount
        if spec.layerSsrcs.count > 1 {
            c.layered = true
            for (i, ssrc) in spec.layerSsrcs.prefix(4).enumerated() { c.layerSsrcs[i] = ssrc }
            for (i, ssrc) in spec.layerRtxSsrcs.prefix(4).enumerated() { c.layerRtxSsrcs[i] = ssrc }
        } else if spec.simulcast && layers > 1 {
            c.simulcast = true
            c.preferredLayer = max(0, min(layers - 1, spec.preferredLayer))
            c.targetLayer = c.preferredLayer
            c.targetSinceNs = rsfu_monotonic_ns()
        }
        ensureReportTimer()
        c.syncRequired = true
        c.nextInProducer = producers[p].firstConsumer
        if c.nextInProducer >= 0 { consumers[Int(c.nextInProducer)].prevInProducer = Int32(h) }
        producers[p].firstConsumer = Int32(h)
        c.nextInTransport = transports[t].firstConsumer
        if c.nextInTransport >= 0 { consumers[Int(c.nextInTransport)].prevInTransport = Int32(h) }
        transports[t].firstConsumer = Int32(h)
        consumers[h] = c
        if c.layered {
            for layer in 0..<min(4, spec.layerSsrcs.count) {
                _ = consumerSsrcTable.insert(transport: UInt32(t), ssrc: c.layerSsrcs[layer], value: UInt32(h) | UInt32(layer) << Self.layerShift)
            }
        } else {
            _ = consumerSsrcTable.insert(transport: UInt32(t), ssrc: spec.ssrc, value: UInt32(h))
        }
        if c.simulcast { updateTargetLayer(h) }
        // A consumer joining a running stream asks for a key frame at once.
        if c.waitsForKeyFrame && c.active && !c.layered { requestKeyFrame(consumer: h) }
    }

    /// A simulcast consumer's target: the highest layer up to its preferred
    /// one that is not silent (else the preferred one). A new target other
    /// than the layer being forwarded asks that layer for a key frame to
    /// switch on.
    mutating func updateTargetLayer(_ h: Int, nowNs: Int64 = rsfu_monotonic_ns()) {
        guard consumers[h].simulcast else { return }
        let p = Int(consumers[h].producer)
        var target = consumers[h].preferredLayer
        var layer = consumers[h].preferredLayer
        while layer >= 0 {
            let s = Int(producers[p].streams[layer])
            if s >= 0, !receiveStreams[s].silent(nowNs: nowNs) {
                target = layer
                break
            }
            layer -= 1
        }
        guard target != consumers[h].targetLayer || consumers[h].currentLayer != target else { return }
        if target != consumers[h].targetLayer { consumers[h].targetSinceNs = nowNs }
        consumers[h].targetLayer = target
        if consumers[h].active && (consumers[h].currentLayer != target || consumers[h].syncRequired) {
            requestKeyFrame(producer: p, layer: target)
        }
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
        c.score = producers[h].scores[layer]
        return c
    }

    func consumerFigures(_ h: Int) -> EntityCounters {
        guard consumers[h].inUse else { return EntityCounters() }
        var c = consumers[h].counters
        c.packetsLost = Int64(consumers[h].remoteLost)
        c.fractionLost = consumers[h].remoteFractionLost
        c.jitter = consumers[h].remoteJitter
        c.score = consumers[h].score
        c.roundTripTimeMs = Double(consumers[h].rttNs) / 1_000_000
        return c
    }

    mutating func closeConsumer(_ h: Int) {
        guard consumers[h].inUse else { return }
        let p = Int(consumers[h].producer), t = Int(consumers[h].transport)
        if consumers[h].nack { producers[p].nackConsumers -= 1 }
        var prev = consumers[h].prevInProducer, next = consumers[h].nextInProducer
        if prev >= 0 { consumers[Int(prev)].nextInProducer = next } else { producers[p].firstConsumer = next }
        if next >= 0 { consumers[Int(next)].prevInProducer = prev }
        prev = consumers[h].prevInTransport
        next = consumers[h].nextInTransport
        if prev >= 0 { consumers[Int(prev)].nextInTransport = next } else { transports[t].firstConsumer = next }
        if next >= 0 { consumers[Int(next)].prevInTransport = prev }
        if consumers[h].layered {
            for layer in 0..<4 where consumers[h].layerSsrcs[layer] != 0 {
                _ = consumerSsrcTable.remove(transport: UInt32(t), ssrc: consumers[h].layerSsrcs[layer])
            }
        } else if consumerSsrcTable.lookup(transport: UInt32(t), ssrc: consumers[h].ssrc) == UInt32(h) {
            _ = consumerSsrcTable.remove(transport: UInt32(t), ssrc: consumers[h].ssrc)
        }
        consumers[h] = ConsumerState()
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
