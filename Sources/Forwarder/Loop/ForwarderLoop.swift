import RingSFUCShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Tags in the top byte of a request's user_data.
enum OpTag: UInt64 {
    case receive = 1, send = 2, wake = 3, cancel = 4, accept = 5, tcpReceive = 6, tcpSend = 7
}

@inline(__always) func userData(_ tag: OpTag, _ index: Int) -> UInt64 { tag.rawValue << 56 | UInt64(index) }

/// The forwarder thread's state and loop. It lives on the thread's stack
/// and is only touched from that thread; per-packet work goes through
/// preallocated tables and raw memory, so it neither locks, allocates nor
/// retains anything.
struct ForwarderLoop: ~Copyable {
    let worker: ForwarderWorker
    let settings: ForwarderSettings
    let ring: UnsafeMutablePointer<io_uring>
    let ringFlags: UInt32

    // Receive side: provided buffer ring over the receive slab.
    let receiveSlab: Slab
    let bufferRing: UnsafeMutablePointer<io_uring_buf_ring>
    let bufferRingMask: Int32
    var pendingBufferReturns: Int32 = 0
    let receiveHeader: UnsafeMutablePointer<msghdr>
    static let bufferGroup: UInt16 = 0

    // Send side: packet slots and sendmsg headers.
    let sendSlab: Slab
    var freeSendSlots: FreeList
    let messageSlab: Slab
    var freeMessages: FreeList
    /// Messages filled during this loop turn, submitted together at its end.
    let openMessages: UnsafeMutablePointer<Int32>
    var openMessageCount = 0
    var maxSegments: Int
    var inflightSends = 0
    var inflightReceives = 0

    /// Scratch memory for packets injected by the application.
    let receiveScratch: UnsafeMutableRawPointer

    // Wake-up for control commands.
    let wakeBuffer: UnsafeMutablePointer<UInt64>
    var wakeArmed = false
    var wakePending = false

    // Entity tables.
    let routers: UnsafeMutablePointer<RouterState>
    let transports: UnsafeMutablePointer<TransportState>
    let producers: UnsafeMutablePointer<ProducerState>
    let consumers: UnsafeMutablePointer<ConsumerState>
    let observers: UnsafeMutablePointer<ObserverState>
    let webrtc: UnsafeMutablePointer<WebRtcState>
    let servers: UnsafeMutablePointer<WebRtcServerState>
    /// (server, hash of ufrag) and (server, hash of remote tuple) -> transport.
    var ufragTable: SsrcTable
    var tupleTable: SsrcTable
    // In-process pipes.
    let outboundPipes: UnsafeMutablePointer<PipeRing?>
    let outboundPushed: UnsafeMutablePointer<Bool>
    let inboundPipes: UnsafeMutablePointer<PipeRing?>
    var inboundPipeCount = 0
    var pipesPushed = false
    let sockets: UnsafeMutablePointer<SocketState>
    let socketCapacity: Int
    var freeSockets: FreeList
    // ICE-TCP connections.
    let tcpConns: UnsafeMutablePointer<TcpConnState>
    var freeTcpConns: FreeList
    let tcpReceiveSlab: Slab
    let tcpSendSlab: Slab
    /// Connections with bytes queued this turn, sent at its end.
    let tcpDirty: UnsafeMutablePointer<Int32>
    var tcpDirtyCount = 0
    var ssrcTable: SsrcTable
    /// (transport, consumer SSRC) -> consumer: where feedback is addressed.
    var consumerSsrcTable: SsrcTable
    /// (transport, hash of MID) and (transport, hash of RID) -> producer.
    var midTable: SsrcTable
    var ridTable: SsrcTable
    var timers: TimerWheel

    var counters = ForwarderCounters()
    /// Monotonic time at the start of this loop turn (packet arrival times).
    var turnNs: Int64 = 0
    var retransmissions: RetransmissionStore
    /// Receive statistics and NACK lists per producer layer (layer 0 at the
    /// producer's handle, higher layers after all producers); the streams
    /// with packets missing (visited by the NACK timer).
    let receiveStreams: UnsafeMutablePointer<ReceiveStreamState>
    let nackStreams: UnsafeMutablePointer<Int32>
    var nackStreamCount = 0
    var nackTimerArmed = false
    var reportTimerArmed = false
    var lastReportNs: Int64 = 0
    /// (transport, SSRC) table values: producer handle, layer, RTX flag.
    static let rtxFlag: UInt32 = 0x8000_0000
    static let handleMask: UInt32 = 0x00FF_FFFF
    static let layerShift: UInt32 = 24
    /// Receive streams of layers above 0 (layer 0 uses the producer's own).
    var freeExtraStreams: FreeList
    var consentTimerArmed = false
    /// Transport-wide CC arrival recorders (each with a ring in the slab),
    /// and the transports that send congestion feedback (timer-driven).
    let transportCcRecorders: UnsafeMutablePointer<TransportCcRecorder>
    let transportCcRings: Slab
    var freeTransportCc: FreeList
    let feedbackTransports: UnsafeMutablePointer<Int32>
    var feedbackTransportCount = 0
    var feedbackTimerArmed = false
    /// RFC 7675 consent freshness timeout (30 s; settable for tests).
    let consentTimeoutNs: Int64
    var fatalReason: String? = nil

    /// Creates the ring (SINGLE_ISSUER + DEFER_TASKRUN where the kernel has
    /// them) and registers the provided buffer ring. Done before any member
    /// is initialised so that a failure leaves nothing half-built.
    private static func makeRing(_ settings: ForwarderSettings) throws(ForwarderStartError)
        -> (UnsafeMutablePointer<io_uring>, UInt32, UnsafeMutableRawPointer)
    {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        var params = io_uring_params()
        params.flags = rsfu_setup_single_issuer() | rsfu_setup_defer_taskrun() | UInt32(IORING_SETUP_CQSIZE)
        params.cq_entries = settings.ringEntries * 4
        var rc = io_uring_queue_init_params(settings.ringEntries, ring, &params)
        if rc < 0 {
            // Older kernels: no DEFER_TASKRUN / SINGLE_ISSUER.
            params = io_uring_params()
            params.flags = UInt32(IORING_SETUP_CQSIZE)
            params.cq_entries = settings.ringEntries * 4
            rc = io_uring_queue_init_params(settings.ringEntries, ring, &params)
        }
        guard rc >= 0 else { ring.deallocate(); throw .ring(-rc) }
        var raw: UnsafeMutableRawPointer? = nil
        _ = posix_memalign(&raw, 4096, settings.receiveBuffers * MemoryLayout<io_uring_buf>.stride)
        var reg = io_uring_buf_reg()
        reg.ring_addr = UInt64(UInt(bitPattern: raw!))
        reg.ring_entries = UInt32(settings.receiveBuffers)
        reg.bgid = bufferGroup
        rc = io_uring_register_buf_ring(ring, &reg, 0)
        guard rc == 0 else {
            io_uring_queue_exit(ring)
            ring.deallocate()
            free(raw)
            throw .bufferRing(-rc)
        }
        return (ring, params.flags, raw!)
    }

    init(worker: ForwarderWorker) throws(ForwarderStartError) {
        let settings = worker.settings
        let (ring, flags, raw) = try Self.makeRing(settings)
        self.worker = worker
        self.settings = settings
        self.ring = ring
        ringFlags = flags
        receiveSlab = Slab(slotSize: settings.bufferSize, count: settings.receiveBuffers)
        let entries = settings.receiveBuffers
        bufferRing = raw.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        bufferRingMask = io_uring_buf_ring_mask(UInt32(entries))
        io_uring_buf_ring_init(bufferRing)
        for i in 0..<entries {
            io_uring_buf_ring_add(bufferRing, receiveSlab.slot(i), UInt32(settings.bufferSize), UInt16(i), bufferRingMask, Int32(i))
        }
        io_uring_buf_ring_advance(bufferRing, Int32(entries))

        receiveHeader = .allocate(capacity: 1)
        receiveHeader.initialize(to: msghdr())
        receiveHeader.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        // Room for the SO_RXQ_OVFL drop counter (present only after drops).
        receiveHeader.pointee.msg_controllen = rsfu_receive_cmsg_space()

        sendSlab = Slab(slotSize: settings.bufferSize, count: settings.sendSlots)
        freeSendSlots = FreeList(capacity: settings.sendSlots)
        messageSlab = Slab(slotSize: SendMessage.slotSize, count: settings.sendMessages)
        freeMessages = FreeList(capacity: settings.sendMessages)
        openMessages = .allocate(capacity: settings.sendMessages)
        maxSegments = max(1, min(settings.maxSegmentsPerSend, SendMessage.maxSegments))

        wakeBuffer = .allocate(capacity: 1)
        wakeBuffer.initialize(to: 0)
        receiveScratch = .allocate(byteCount: settings.bufferSize, alignment: 64)

        routers = .allocate(capacity: Int(settings.maxRouters))
        routers.initialize(repeating: RouterState(), count: Int(settings.maxRouters))
        transports = .allocate(capacity: Int(settings.maxTransports))
        transports.initialize(repeating: TransportState(), count: Int(settings.maxTransports))
        producers = .allocate(capacity: Int(settings.maxProducers))
        producers.initialize(repeating: ProducerState(), count: Int(settings.maxProducers))
        consumers = .allocate(capacity: Int(settings.maxConsumers))
        consumers.initialize(repeating: ConsumerState(), count: Int(settings.maxConsumers))
        outboundPipes = .allocate(capacity: Int(settings.maxPipeLinks))
        outboundPipes.initialize(repeating: nil, count: Int(settings.maxPipeLinks))
        outboundPushed = .allocate(capacity: Int(settings.maxPipeLinks))
        outboundPushed.initialize(repeating: false, count: Int(settings.maxPipeLinks))
        inboundPipes = .allocate(capacity: Int(settings.maxPipeLinks))
        inboundPipes.initialize(repeating: nil, count: Int(settings.maxPipeLinks))
        servers = .allocate(capacity: Int(settings.maxWebRtcServers))
        servers.initialize(repeating: WebRtcServerState(), count: Int(settings.maxWebRtcServers))
        ufragTable = SsrcTable(capacityPowerOfTwo: 14)
        tupleTable = SsrcTable(capacityPowerOfTwo: 14)
        webrtc = .allocate(capacity: Int(settings.maxTransports))
        webrtc.initialize(repeating: WebRtcState(), count: Int(settings.maxTransports))
        observers = .allocate(capacity: Int(settings.maxObservers))
        observers.initialize(repeating: ObserverState(), count: Int(settings.maxObservers))
        let tcpCount = max(1, settings.maxTcpConnections)
        tcpConns = .allocate(capacity: tcpCount)
        tcpConns.initialize(repeating: TcpConnState(), count: tcpCount)
        freeTcpConns = FreeList(capacity: settings.maxTcpConnections)
        tcpReceiveSlab = Slab(slotSize: Self.tcpReceiveSize(settings), count: tcpCount)
        tcpSendSlab = Slab(slotSize: settings.tcpSendBufferSize, count: tcpCount)
        tcpDirty = .allocate(capacity: tcpCount)
        socketCapacity = Int(settings.maxTransports) * 2 + settings.maxTcpConnections + Int(settings.maxWebRtcServers) * 2
        sockets = .allocate(capacity: socketCapacity)
        sockets.initialize(repeating: SocketState(), count: socketCapacity)
        freeSockets = FreeList(capacity: socketCapacity)
        ssrcTable = SsrcTable(capacityPowerOfTwo: settings.ssrcTableBits)
        consumerSsrcTable = SsrcTable(capacityPowerOfTwo: settings.ssrcTableBits)
        retransmissions = RetransmissionStore(slots: settings.retransmissionSlots, slotSize: settings.bufferSize)
        let extraStreams = max(64, Int(settings.maxProducers) / 2)
        receiveStreams = .allocate(capacity: Int(settings.maxProducers) + extraStreams)
        receiveStreams.initialize(repeating: ReceiveStreamState(), count: Int(settings.maxProducers) + extraStreams)
        freeExtraStreams = FreeList(capacity: extraStreams)
        // One entry per receive stream at most (inNackList guards it).
        nackStreams = .allocate(capacity: Int(settings.maxProducers) + extraStreams)
        midTable = SsrcTable(capacityPowerOfTwo: 12)
        ridTable = SsrcTable(capacityPowerOfTwo: 12)
        timers = TimerWheel(nowNs: rsfu_monotonic_ns())
        let recorders = max(1, settings.maxTransportCcTransports)
        transportCcRings = Slab(slotSize: TransportCcRecorder.capacity * 8, count: recorders)
        transportCcRecorders = .allocate(capacity: recorders)
        for i in 0..<recorders {
            (transportCcRecorders + i).initialize(to: TransportCcRecorder(ring: transportCcRings.slot(i).assumingMemoryBound(to: UInt64.self)))
        }
        freeTransportCc = FreeList(capacity: settings.maxTransportCcTransports)
        feedbackTransports = .allocate(capacity: Int(settings.maxTransports))
        consentTimeoutNs = Int64(settings.iceConsentTimeoutMs) * 1_000_000
    }

    deinit {
        ring.deallocate()
        free(UnsafeMutableRawPointer(bufferRing))
        receiveHeader.deallocate()
        openMessages.deallocate()
        wakeBuffer.deallocate()
        receiveScratch.deallocate()
        routers.deallocate()
        transports.deallocate()
        producers.deallocate()
        consumers.deallocate()
        observers.deallocate()
        webrtc.deallocate()
        servers.deallocate()
        outboundPipes.deallocate()
        outboundPushed.deallocate()
        inboundPipes.deallocate()
        sockets.deallocate()
        tcpConns.deallocate()
        tcpDirty.deallocate()
        receiveStreams.deallocate()
        nackStreams.deallocate()
        transportCcRecorders.deallocate()
        feedbackTransports.deallocate()
    }

    // MARK: - Submission helpers

    /// Gets an SQE, flushing the submission queue first if it is full.
    @inline(__always)
    mutating func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(ring) { return s }
        _ = io_uring_submit(ring)
        if let s = io_uring_get_sqe(ring) { return s }
        // The kernel consumed nothing: wait for completions to make room.
        _ = io_uring_submit_and_wait(ring, 1)
        return io_uring_get_sqe(ring)!
    }

    mutating func armWake() {
        let s = sqe()
        io_uring_prep_read(s, worker.eventFd, wakeBuffer, 8, 0)
        io_uring_sqe_set_data64(s, userData(.wake, 0))
        wakeArmed = true
    }

    mutating func armReceive(socket index: Int) {
        let s = sqe()
        io_uring_prep_recvmsg_multishot(s, sockets[index].fd, receiveHeader, 0)
        s.pointee.flags |= UInt8(rsfu_sqe_buffer_select())
        s.pointee.buf_group = Self.bufferGroup
        io_uring_sqe_set_data64(s, userData(.receive, index))
        sockets[index].armed = true
        inflightReceives += 1
    }

    // MARK: - The loop

    /// Runs until stopped. Returns a reason if the ring failed fatally.
    mutating func run() -> String? {
        armWake()
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 256)
        defer { cqes.deallocate() }
        var ts = __kernel_timespec()
        while fatalReason == nil {
            if worker.stopRequested.load(ordering: .acquiring) { break }
            // Wait for at least one completion, bounded by the next timer.
            var waitResult: Int32
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            if let deadline = timers.nextDeadline() {
                let delta = max(0, deadline - rsfu_monotonic_ns())
                ts.tv_sec = delta / 1_000_000_000
                ts.tv_nsec = delta % 1_000_000_000
                waitResult = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            } else {
                waitResult = io_uring_submit_and_wait_timeout(ring, &cqe, 1, nil, nil)
            }
            if waitResult < 0 && waitResult != -ETIME && waitResult != -EINTR && waitResult != -EAGAIN && waitResult != -EBUSY {
                fatalReason = "io_uring_submit_and_wait_timeout failed: errno \(-waitResult)"
                break
            }
            counters.loopTurns &+= 1
            turnNs = rsfu_monotonic_ns()
            // Drain every completion available, in batches.
            while true {
                let n = Int(io_uring_peek_batch_cqe(ring, cqes, 256))
                if n == 0 { break }
                for i in 0..<n { handle(cqes[i]!) }
                io_uring_cq_advance(ring, UInt32(n))
                if n < 256 { break }
            }
            returnBuffers()
            flushSends()
            wakePipePeers()
            if wakePending {
                wakePending = false
                applyCommands()
                drainPipes()
                // Commands can produce packets too (DirectTransport): send
                // them with this turn's submit rather than the next event's.
                flushSends()
                wakePipePeers()
                if !wakeArmed { armWake() }
            }
            if timers.activeCount > 0 {
                fireTimers()
                // Timers send too (DTLS retransmissions, RTCP): before the wait.
                flushSends()
            }
        }
        return fatalReason
    }

    @inline(__always)
    mutating func handle(_ cqe: UnsafeMutablePointer<io_uring_cqe>) {
        let data = cqe.pointee.user_data
        let index = Int(data & 0x00FF_FFFF_FFFF_FFFF)
        switch data >> 56 {
        case OpTag.receive.rawValue: handleReceive(cqe, socket: index)
        case OpTag.send.rawValue: handleSendCompletion(message: index, result: cqe.pointee.res)
        case OpTag.wake.rawValue:
            wakeArmed = false
            wakePending = true
        case OpTag.accept.rawValue: handleAccept(cqe, socket: index)
        case OpTag.tcpReceive.rawValue: handleTcpReceive(result: cqe.pointee.res, socket: index)
        case OpTag.tcpSend.rawValue: handleTcpSend(result: cqe.pointee.res, connection: index)
        default: break
        }
    }

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
            var len = Int32(size)
            let rc = rtcp ? srtp_unprotect_rtcp(srtp, packet, &len) : srtp_unprotect(srtp, packet, &len)
            guard rc == srtp_err_status_ok else { countSrtpFailure(rc); return }
            length = Int(len)
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
        if transports[t].maxIncomingBitrate != 0 || transports[t].unlimitedRembsLeft != 0, !transports[t].remb.enabled {
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
        do {
            try RtpHeaderExtensions.remapIds(packet, header, (producers + p).pointer(to: \.extensionIds)!)
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
        if producers[p].paused { return }
        if producers[p].observerCount > 0 { recordAudioLevel(p, packet, header) }

        // Kept for NACKs while a consumer that negotiated them exists.
        if producers[p].nackConsumers > 0 {
            retransmissions.store(stream: stream, sequence: header.sequenceNumber, packet, length: size, nowNs: turnNs)
        }
        // Key frame detection is done at most once per packet, and only if
        // some consumer is waiting for one or a request is pending.
        var keyFrame: Int8 = -1
        if producers[p].keyFramePendingNs[layer] != 0 {
            keyFrame = isKeyFrame(packet, header, codec: producers[p].codecs[Int(routerPt)]) ? 1 : 0
            if keyFrame == 1 {
                producers[p].keyFramePendingNs[layer] = 0
                producers[p].counters.keyFrames &+= 1
            }
        }
        // Padding only (bandwidth probes): nothing for the endpoint. Consumers
        // drop it and hide the gap in their numbering, as mediasoup does.
        let paddingOnly = header.payloadLength == 0
        var c = producers[p].firstConsumer
        while c >= 0 {
            let ci = Int(c)
            let next = consumers[ci].nextInProducer
            if consumers[ci].active {
                if consumers[ci].layered {
                    // A pipe consumer: every layer, numbering untouched.
                    sendToConsumer(ci, packet, size: size, header: header, routerPt: routerPt, layer: layer)
                } else if consumers[ci].simulcast {
                    // Follow the publisher at once: a layer up to the preferred
                    // one came back, or the target went silent while this lower
                    // one flows (browsers pause encodings they cannot afford).
                    // A target that never sent gets as long as the silence
                    // limit from when it became the target and this layer began.
                    let target = consumers[ci].targetLayer
                    if layer > target ? layer <= consumers[ci].preferredLayer
                        : layer < target
                            && turnNs - max(consumers[ci].targetSinceNs, receiveStreams[stream].firstArrivalNs) > ReceiveStreamState.minSilenceNs
                            && targetSilent(p, target) {
                        updateTargetLayer(ci, nowNs: turnNs)
                    }
                    if layer == consumers[ci].currentLayer && !consumers[ci].syncRequired {
                        if paddingOnly {
                            consumers[ci].rtp.drop(header.sequenceNumber)
                        } else {
                            sendToConsumer(ci, packet, size: size, header: header, routerPt: routerPt)
                        }
                    } else if layer == consumers[ci].targetLayer {
                        // Switch (or start, or restart) on the target layer's key frame.
                        if keyFrame < 0 { keyFrame = isKeyFrame(packet, header, codec: producers[p].codecs[Int(routerPt)]) ? 1 : 0 }
                        if keyFrame == 1 {
                            rebase(ci, header, continueTimestamps: true)
                            if consumers[ci].currentLayer != layer {
                                consumers[ci].currentLayer = layer
                                worker.onEvent(.consumerLayer(consumer: consumers[ci].handle, layer: layer))
                            }
                            sendToConsumer(ci, packet, size: size, header: header, routerPt: routerPt)
                        }
                    }
                } else if layer == 0 {
                    if consumers[ci].syncRequired {
                        var canStart = !paddingOnly
                        if canStart && consumers[ci].waitsForKeyFrame {
                            if keyFrame < 0 { keyFrame = isKeyFrame(packet, header, codec: producers[p].codecs[Int(routerPt)]) ? 1 : 0 }
                            canStart = keyFrame == 1
                        }
                        if canStart {
                            rebase(ci, header, continueTimestamps: false)
                            sendToConsumer(ci, packet, size: size, header: header, routerPt: routerPt)
                        }
                    } else if paddingOnly {
                        consumers[ci].rtp.drop(header.sequenceNumber)
                    } else {
                        sendToConsumer(ci, packet, size: size, header: header, routerPt: routerPt)
                    }
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

    /// Whether a simulcast layer has stopped (or never started).
    @inline(__always)
    func targetSilent(_ p: Int, _ layer: Int) -> Bool {
        let s = Int(producers[p].streams[layer])
        return s < 0 || receiveStreams[s].silent(nowNs: turnNs)
    }

    @inline(__always)
    func isKeyFrame(_ packet: UnsafeMutableRawPointer, _ header: RtpHeader, codec: UInt8) -> Bool {
        KeyFrameDetector.isKeyFrame(KeyFrameCodec(rawValue: codec) ?? .none, packet + header.payloadOffset, count: header.payloadLength)
    }

    @inline(__always)
    mutating func sendToConsumer(_ ci: Int, _ packet: UnsafeMutableRawPointer, size: Int, header: RtpHeader, routerPt: UInt8, layer: Int = 0, retransmission: Bool = false) {
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
        if consumers[ci].simulcast, header.payloadLength > 0,
           producers[Int(consumers[ci].producer)].codecs[Int(routerPt & 0x7F)] == KeyFrameCodec.vp8.rawValue,
           !consumers[ci].vp8.rewrite(out + header.payloadOffset, count: header.payloadLength) {
            counters.dropMalformed &+= 1
            freeSendSlots.push(slot)
            return
        }
        RtpRewrite.setSsrc(out, consumers[ci].layered ? consumers[ci].layerSsrcs[layer] : consumers[ci].ssrc)
        RtpRewrite.setPayloadType(out, outPt)
        RtpRewrite.setSequenceNumber(out, seq)
        let timestamp = consumers[ci].rtp.timestamp(for: header.timestamp)
        if timestamp != header.timestamp { RtpRewrite.setTimestamp(out, timestamp) }
        // The producer stage already validated the extension block.
        try? RtpHeaderExtensions.remapIds(out, header, (consumers + ci).pointer(to: \.extensionIds)!)
        var size = size
        if consumers[ci].midExtensionId != 0 { size = rewriteMid(out, header, ci, size: size) }
        if retransmission {
            let rtxSsrc = consumers[ci].layered ? consumers[ci].layerRtxSsrcs[layer] : consumers[ci].rtxSsrc
            if rtxSsrc != 0 {
                size = wrapRtx(out, size: size, ci, routerPt: routerPt, rtxSsrc: rtxSsrc)
                guard size > 0 else { freeSendSlots.push(slot); return }
                consumers[ci].rtxSequence &+= 1
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
            worker.onEvent(.directRtp(consumer: consumers[ci].handle, Array(UnsafeRawBufferPointer(start: out, count: size))))
            counters.packetsOut &+= 1
            counters.bytesOut &+= UInt64(size)
            freeSendSlots.push(slot)
            return
        }
        var length = size
        if let srtp = transports[t].srtpSend {
            // Encrypted straight into the send slot (2 KiB: room for the tag).
            var len = Int32(size)
            let rc = srtp_protect(srtp, out, &len)
            guard rc == srtp_err_status_ok else {
                counters.dropSrtpOther &+= 1
                freeSendSlots.push(slot)
                return
            }
            length = Int(len)
        }
        enqueue(consumer: ci, slot: slot, data: out, length: length, transport: t)
    }

    /// Puts the consumer's MID in the packet's MID element. A value that
    /// fits is written in place (a shorter one shrinks the element, the freed
    /// bytes becoming padding); a longer one rebuilds the extension block
    /// (one- or two-byte form) with room for it and moves the payload back.
    /// Returns the size.
    @inline(__always)
    func rewriteMid(_ out: UnsafeMutableRawPointer, _ header: RtpHeader, _ ci: Int, size: Int) -> Int {
        let id = consumers[ci].midExtensionId
        let mid = consumers[ci].mid, midLength = consumers[ci].midLength
        let oneByte = header.hasOneByteExtensions
        var tooSmall = false
        try? RtpHeaderExtensions.walk(out, header) { elementId, offset, headerSize, length in
            guard elementId == id else { return }
            if midLength <= length && (oneByte ? midLength >= 1 && midLength <= 16 : midLength <= 255) {
                if oneByte {
                    out.storeBytes(of: (id << 4) | UInt8(midLength - 1), toByteOffset: offset, as: UInt8.self)
                } else {
                    out.storeBytes(of: UInt8(midLength), toByteOffset: offset + 1, as: UInt8.self)
                }
                for i in 0..<midLength { out.storeBytes(of: mid[i], toByteOffset: offset + headerSize + i, as: UInt8.self) }
                if length > midLength {
                    (out + offset + headerSize + midLength).initializeMemory(as: UInt8.self, repeating: 0, count: length - midLength)
                }
            } else {
                tooSmall = true
            }
        }
        guard tooSmall else { return size }
        guard let ext = header.extensionOffset, oneByte ? midLength <= 16 : midLength <= 255 else { return dropElement(out, header, id, size: size) }
        // Rebuild the block in the same form: every element as it is, the
        // MID with our value.
        var block = InlineArray<512, UInt8>(repeating: 0)
        var n = 0
        var fits = true
        try? RtpHeaderExtensions.walk(out, header) { elementId, offset, headerSize, length in
            let valueLength = elementId == id ? midLength : length
            guard n + headerSize + valueLength <= 508 else { fits = false; return }
            if oneByte {
                block[n] = (elementId << 4) | UInt8(valueLength - 1)
            } else {
                block[n] = elementId
                block[n + 1] = UInt8(valueLength)
            }
            for i in 0..<valueLength {
                block[n + headerSize + i] = elementId == id ? mid[i] : out.load(fromByteOffset: offset + headerSize + i, as: UInt8.self)
            }
            n += headerSize + valueLength
        }
        while n % 4 != 0 { block[n] = 0; n += 1 }
        let oldLength = header.extensionLength
        let delta = n - oldLength
        let payloadStart = ext + 4 + oldLength
        guard fits, delta >= 0, size + delta + SrtpSession.maxTrailer <= settings.bufferSize else {
            return dropElement(out, header, id, size: size)
        }
        if delta > 0 { memmove(out + payloadStart + delta, out + payloadStart, size - payloadStart) }
        for i in 0..<n { out.storeBytes(of: block[i], toByteOffset: ext + 4 + i, as: UInt8.self) }
        writeUInt16(out, ext + 2, UInt16(n / 4))
        return size + delta
    }

    /// Removes one extension element by zeroing it (valid padding).
    func dropElement(_ out: UnsafeMutableRawPointer, _ header: RtpHeader, _ id: UInt8, size: Int) -> Int {
        try? RtpHeaderExtensions.walk(out, header) { elementId, offset, headerSize, length in
            if elementId == id { (out + offset).initializeMemory(as: UInt8.self, repeating: 0, count: headerSize + length) }
        }
        return size
    }

    @inline(__always)
    mutating func countSrtpFailure(_ rc: srtp_err_status_t) {
        switch rc {
        case srtp_err_status_auth_fail: counters.dropSrtpAuth &+= 1
        case srtp_err_status_replay_fail, srtp_err_status_replay_old: counters.dropSrtpReplay &+= 1
        default: counters.dropSrtpOther &+= 1
        }
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
