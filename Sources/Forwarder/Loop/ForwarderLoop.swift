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
    let routers: Table<RouterState>
    let transports: Table<TransportState>
    let producers: Table<ProducerState>
    /// Each producer's cold row (same index as in `producers`).
    let producerCold: Table<ProducerColdState>
    let consumers: Table<ConsumerState>
    /// Each consumer's cold row (same index as in `consumers`).
    let consumerCold: Table<ConsumerColdState>
    let observers: Table<ObserverState>
    let webrtc: Table<WebRtcState>
    let servers: Table<WebRtcServerState>
    /// (server, hash of ufrag) and (server, hash of remote tuple) -> transport.
    var ufragTable: SsrcTable
    var tupleTable: SsrcTable
    // In-process pipes.
    let outboundPipes: UnsafeMutablePointer<PipeRing?>
    let outboundPushed: UnsafeMutablePointer<Bool>
    let inboundPipes: UnsafeMutablePointer<PipeRing?>
    var inboundPipeCount = 0
    var pipesPushed = false
    let sockets: Table<SocketState>
    let socketCapacity: Int
    var freeSockets: FreeList
    // ICE-TCP connections.
    let tcpConns: Table<TcpConnState>
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
    /// The worker's random choices, from one seed (see `ForwarderSettings`).
    var random: SplitMix64

    var counters = ForwarderCounters()
    /// Monotonic time at the start of this loop turn (packet arrival times).
    var turnNs: Int64 = 0
    var retransmissions: RetransmissionStore
    /// Receive statistics and NACK lists per producer layer (layer 0 at the
    /// producer's handle, higher layers after all producers); the streams
    /// with packets missing (visited by the NACK timer).
    let receiveStreams: Table<ReceiveStreamState>
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
    /// Send-side estimators and their send histories (rings in the slab).
    let sendSideEstimators: UnsafeMutablePointer<SendSideEstimator>
    let sendHistories: UnsafeMutablePointer<SendHistory>
    let sendHistoryRings: Slab
    var freeSendSide: FreeList
    let sendSideControls: UnsafeMutablePointer<SendSideControl>
    /// Scratch for one transport's layer allocation (see +Allocation).
    let allocation = AllocationScratch()
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

        routers = Table(count: Int(settings.maxRouters), repeating: RouterState())
        transports = Table(count: Int(settings.maxTransports), repeating: TransportState())
        producers = Table(count: Int(settings.maxProducers), repeating: ProducerState())
        producerCold = Table(count: Int(settings.maxProducers), repeating: ProducerColdState())
        consumers = Table(count: Int(settings.maxConsumers), repeating: ConsumerState())
        consumerCold = Table(count: Int(settings.maxConsumers), repeating: ConsumerColdState())
        outboundPipes = .allocate(capacity: Int(settings.maxPipeLinks))
        outboundPipes.initialize(repeating: nil, count: Int(settings.maxPipeLinks))
        outboundPushed = .allocate(capacity: Int(settings.maxPipeLinks))
        outboundPushed.initialize(repeating: false, count: Int(settings.maxPipeLinks))
        inboundPipes = .allocate(capacity: Int(settings.maxPipeLinks))
        inboundPipes.initialize(repeating: nil, count: Int(settings.maxPipeLinks))
        servers = Table(count: Int(settings.maxWebRtcServers), repeating: WebRtcServerState())
        ufragTable = SsrcTable(capacityPowerOfTwo: 14)
        tupleTable = SsrcTable(capacityPowerOfTwo: 14)
        webrtc = Table(count: Int(settings.maxTransports), repeating: WebRtcState())
        observers = Table(count: Int(settings.maxObservers), repeating: ObserverState())
        let tcpCount = max(1, settings.maxTcpConnections)
        tcpConns = Table(count: tcpCount, repeating: TcpConnState())
        freeTcpConns = FreeList(capacity: settings.maxTcpConnections)
        tcpReceiveSlab = Slab(slotSize: Self.tcpReceiveSize(settings), count: tcpCount)
        tcpSendSlab = Slab(slotSize: settings.tcpSendBufferSize, count: tcpCount)
        tcpDirty = .allocate(capacity: tcpCount)
        socketCapacity = Int(settings.maxTransports) * 2 + settings.maxTcpConnections + Int(settings.maxWebRtcServers) * 2
        sockets = Table(count: socketCapacity, repeating: SocketState())
        freeSockets = FreeList(capacity: socketCapacity)
        ssrcTable = SsrcTable(capacityPowerOfTwo: settings.ssrcTableBits)
        consumerSsrcTable = SsrcTable(capacityPowerOfTwo: settings.ssrcTableBits)
        retransmissions = RetransmissionStore(slots: settings.retransmissionSlots, slotSize: settings.bufferSize)
        let extraStreams = max(64, Int(settings.maxProducers) / 2)
        receiveStreams = Table(count: Int(settings.maxProducers) + extraStreams, repeating: ReceiveStreamState())
        freeExtraStreams = FreeList(capacity: extraStreams)
        // One entry per receive stream at most (inNackList guards it).
        nackStreams = .allocate(capacity: Int(settings.maxProducers) + extraStreams)
        midTable = SsrcTable(capacityPowerOfTwo: 12)
        ridTable = SsrcTable(capacityPowerOfTwo: 12)
        timers = TimerWheel(nowNs: rsfu_monotonic_ns())
        random = SplitMix64(seed: settings.randomSeed ?? UInt64.random(in: 0...UInt64.max))
        let recorders = max(1, settings.maxTransportCcTransports)
        transportCcRings = Slab(slotSize: TransportCcRecorder.capacity * 8, count: recorders)
        transportCcRecorders = .allocate(capacity: recorders)
        for i in 0..<recorders {
            (transportCcRecorders + i).initialize(to: TransportCcRecorder(ring: transportCcRings.slot(i).assumingMemoryBound(to: UInt64.self)))
        }
        freeTransportCc = FreeList(capacity: settings.maxTransportCcTransports)
        let estimators = max(1, settings.maxSendSideTransports)
        sendHistoryRings = Slab(slotSize: SendHistory.ringBytes, count: estimators)
        sendHistories = .allocate(capacity: estimators)
        sendSideEstimators = .allocate(capacity: estimators)
        for i in 0..<estimators {
            (sendHistories + i).initialize(to: SendHistory(memory: sendHistoryRings.slot(i)))
            (sendSideEstimators + i).initialize(to: SendSideEstimator())
        }
        freeSendSide = FreeList(capacity: settings.maxSendSideTransports)
        sendSideControls = .allocate(capacity: estimators)
        sendSideControls.initialize(repeating: SendSideControl(), count: estimators)
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
        producerCold.deallocate()
        consumers.deallocate()
        consumerCold.deallocate()
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
        sendHistories.deallocate()
        sendSideEstimators.deallocate()
        sendSideControls.deallocate()
        allocation.deallocate()
        feedbackTransports.deallocate()
    }
}
