import Foundation
import CoreMetrics
import Logging
import RingSFUCShims
import RingSFUForwarder

public enum WorkerEvent: Sendable {
    /// The forwarder thread stopped on a fatal error; everything below the
    /// worker has been closed.
    case died(String)
}

public enum WorkerObserverEvent: Sendable {
    case close
    case newRouter(Router)
    case newWebRtcServer(WebRtcServer)
}

/// A worker: one forwarder thread (thread-per-core) and the routers it
/// hosts. Create one per CPU core you want to forward on.
@RingSFUActor
public final class Worker {
    public nonisolated let id: String
    public private(set) var closed = false
    public private(set) var died = false
    public var appData: AppData
    public nonisolated let settings: WorkerSettings

    package let forwarder: ForwarderWorker
    let portRange: ClosedRange<UInt16>
    var logger: Logger
    var routers = OrderedMap<Router>()
    var webRtcServers = OrderedMap<WebRtcServer>()
    /// Lookups by id and by forwarder handle.
    var registry = EntityRegistry()
    /// Outbound pipe link index per peer worker id.
    var pipeLinks: [String: UInt32] = [:]
    private let eventChannel = EventChannel<WorkerEvent>()
    /// Emits on `events` and to the notification taps.
    func publish(_ event: WorkerEvent) {
        eventChannel.emit(event)
        published(.worker(id, event))
    }
    private let observerChannel = EventChannel<WorkerObserverEvent>()
    private var taps: [Int: @RingSFUActor (EntityNotification) -> Void] = [:]
    private var nextTap = 0

    /// Starts a worker thread and returns once it is ready.
    public nonisolated static func create(_ settings: WorkerSettings = WorkerSettings()) async throws(SFUError) -> Worker {
        let minPort = settings.rtcMinPort ?? 10000
        let maxPort = settings.rtcMaxPort ?? 59999
        guard (1...65535).contains(minPort), (1...65535).contains(maxPort), minPort <= maxPort else {
            throw .invalidArgument("invalid rtcMinPort/rtcMaxPort \(minPort)-\(maxPort)")
        }
        if let cpu = settings.cpu, cpu < 0 { throw .invalidArgument("invalid cpu \(cpu)") }
        // No level given: the application's logging decides (its LogHandler's level).
        let level = try settings.logLevel.map { name throws(SFUError) in try logLevel(named: name) }
        var fs = ForwarderSettings()
        fs.cpu = settings.cpu
        if settings.gso == false { fs.maxSegmentsPerSend = 1 }
        if let us = settings.coalesceMicroseconds {
            guard (0...1000).contains(us) else { throw .invalidArgument("invalid coalesceMicroseconds \(us) (0-1000)") }
            fs.coalesceMicroseconds = UInt32(us)
        }
        if let n = settings.maxTransports { fs.maxTransports = UInt32(max(1, n)) }
        if let n = settings.maxProducers { fs.maxProducers = UInt32(max(1, n)) }
        if let n = settings.maxConsumers { fs.maxConsumers = UInt32(max(1, n)) }
        if let ms = settings.iceConsentTimeoutMs { fs.iceConsentTimeoutMs = max(100, ms) }
        if let n = settings.maxTcpConnections {
            guard (1...65536).contains(n) else { throw .invalidArgument("invalid maxTcpConnections \(n) (1-65536)") }
            fs.maxTcpConnections = n
        }
        if let ms = settings.tcpIdleTimeoutMs {
            guard (100...600_000).contains(ms) else { throw .invalidArgument("invalid tcpIdleTimeoutMs \(ms) (100-600000)") }
            fs.tcpIdleTimeoutMs = ms
        }
        if let n = settings.maxPendingTcpPerListener {
            guard n >= 1 else { throw .invalidArgument("invalid maxPendingTcpPerListener \(n) (at least 1)") }
            fs.maxPendingTcpPerListener = n
        }
        if let n = settings.maxPendingTcpPerSource {
            guard n >= 1 else { throw .invalidArgument("invalid maxPendingTcpPerSource \(n) (at least 1)") }
            fs.maxPendingTcpPerSource = n
        }
        if let n = settings.receiveBuffers {
            guard (1...32768).contains(n) else { throw .invalidArgument("invalid receiveBuffers \(n) (1-32768)") }
            var size = 1
            while size < n { size <<= 1 }
            fs.receiveBuffers = size
        }
        if let n = settings.retransmissionBufferPackets {
            guard (1...262_144).contains(n) else {
                throw .invalidArgument("invalid retransmissionBufferPackets \(n) (1-262144)")
            }
            fs.retransmissionSlots = n
        }
        if let ms = settings.retransmissionMaxAgeMs {
            guard (1...60_000).contains(ms) else {
                throw .invalidArgument("invalid retransmissionMaxAgeMs \(ms) (1-60000)")
            }
            fs.retransmissionMaxAgeMs = ms
        }
        switch (settings.dtlsCertificateFile, settings.dtlsPrivateKeyFile) {
        case (nil, nil):
            break
        case let (certificate?, key?):
            // Checked here so a wrong path is named (OpenSSL's failure is not).
            for (field, path) in [("dtlsCertificateFile", certificate), ("dtlsPrivateKeyFile", key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw .invalidArgument("invalid \(field): cannot read \(path)")
            }
            fs.dtlsCertificateFile = certificate
            fs.dtlsPrivateKeyFile = key
        default:
            throw .invalidArgument("dtlsCertificateFile and dtlsPrivateKeyFile go together")
        }
        let (events, continuation) = AsyncStream<ForwarderEvent>.makeStream()
        let forwarder: ForwarderWorker
        do {
            forwarder = try ForwarderWorker(settings: fs) { continuation.yield($0) }
            try await forwarder.start()
        } catch ForwarderStartError.dtls where settings.dtlsCertificateFile != nil {
            throw .invalidArgument("invalid dtlsCertificateFile/dtlsPrivateKeyFile: not a PEM certificate and its matching private key")
        } catch {
            throw .failure("worker failed to start: \(error)")
        }
        let worker = await Worker(settings: settings, forwarder: forwarder, portRange: UInt16(minPort)...UInt16(maxPort), logLevel: level)
        await worker.pump(events)
        return worker
    }

    init(settings: WorkerSettings, forwarder: ForwarderWorker, portRange: ClosedRange<UInt16>, logLevel: Logger.Level?) {
        id = UUID().uuidString.lowercased()
        self.settings = settings
        self.forwarder = forwarder
        self.portRange = portRange
        appData = settings.appData ?? [:]
        var logger = Logger(label: "ringsfu.worker")
        if let logLevel { logger.logLevel = logLevel }
        logger[metadataKey: "worker"] = .string(id)
        self.logger = logger
    }

    /// Delivers forwarder notifications on the control plane, in order.
    private func pump(_ events: AsyncStream<ForwarderEvent>) {
        Task { @RingSFUActor [weak self] in
            for await event in events {
                guard let self else { return }
                self.handle(event)
            }
        }
    }

    private func handle(_ event: ForwarderEvent) {
        switch event {
        case let .tupleLearned(handle, rtcp, address):
            (registry.transportsByHandle[handle] as? PlainTransport)?.tupleLearned(address, rtcp: rtcp)
        case let .directRtp(handle, bytes):
            if let c = registry.consumersByHandle[handle] { c.directRtp(bytes) }
        case let .bwe(handle, r):
            registry.transportsByHandle[handle]?.bweTraced(r)
        case let .trace(r):
            if r.consumer {
                if let c = registry.consumersByHandle[r.handle] { c.traced(r) }
            } else {
                registry.producersByHandle[r.handle]?.traced(r)
            }
        case let .producerScore(handle, layer, score):
            registry.producersByHandle[handle]?.scoreChanged(layer: layer, score)
        case let .consumerLayer(handle, layer, temporal):
            if let c = registry.consumersByHandle[handle] { c.layerChanged(layer, temporal: temporal) }
        case let .consumerScore(handle, score, producerScore):
            if let c = registry.consumersByHandle[handle] { c.scoreChanged(score, producerScore: producerScore) }
        case let .directRtcp(handle, bytes):
            (registry.transportsByHandle[handle] as? DirectTransport)?.directRtcp(bytes)
        case let .iceSelectedTuple(handle, address, tcp):
            (registry.transportsByHandle[handle] as? WebRtcTransport)?.iceSelectedTupleChanged(address, tcp: tcp)
        case let .iceState(handle, state):
            (registry.transportsByHandle[handle] as? WebRtcTransport)?.iceStateChanged(state)
        case let .dtlsState(handle, state):
            (registry.transportsByHandle[handle] as? WebRtcTransport)?.dtlsStateChanged(state)
        case let .srtpFailed(handle, reason):
            registry.transportsByHandle[handle]?.srtpFailed(reason)
        case let .sctpData(handle, packet):
            forwarder.sctpQueuedBytes.subtract(packet.count, ordering: .relaxed)
            registry.transportsByHandle[handle]?.sctpData(packet)
        case let .audioLevels(handle, samples):
            registry.observersByHandle[handle]?.intervalEnded(samples)
        case .died(let reason):
            workerDied(reason)
        }
    }

    /// A new, independent sequence of this worker's events (`died`).
    public var events: AsyncStream<WorkerEvent> { eventChannel.subscribe() }
    /// A new, independent sequence of observer events (`close`, `newRouter`).
    public var observer: AsyncStream<WorkerObserverEvent> { observerChannel.subscribe() }

    /// Routers hosted by this worker.
    public var routerCount: Int { routers.count }

    /// Creates a router whose capabilities follow `mediaCodecs`.
    public func createRouter(mediaCodecs: [RtpCodecCapability] = [], appData: AppData = [:]) throws(SFUError) -> Router {
        try checkOpen()
        let caps = try Ortc.generateRouterRtpCapabilities(mediaCodecs)
        guard let handle = forwarder.routerHandles.allocate() else { throw .failure("too many routers in this worker") }
        forwarder.send(.addRouter(handle))
        let router = Router(worker: self, handle: handle, rtpCapabilities: caps, appData: appData)
        routers[router.id] = router
        logger.debug("router created", metadata: ["router": .string(router.id)])
        observerChannel.emit(.newRouter(router))
        return router
    }

    /// Creates a server that lets many WebRtcTransports share one UDP port.
    public func createWebRtcServer(_ options: WebRtcServerOptions) throws(SFUError) -> WebRtcServer {
        try checkOpen()
        let server = try WebRtcServer.make(worker: self, options: options)
        webRtcServers[server.id] = server
        observerChannel.emit(.newWebRtcServer(server))
        return server
    }

    func webRtcServerClosed(_ s: WebRtcServer) { webRtcServers[s.id] = nil }

    /// Stops the forwarder thread and closes everything below the worker.
    public func close() {
        guard !closed else { return }
        closed = true
        Task { await forwarder.stop() }
        for router in routers.values { router.workerClosed() }
        routers.removeAll()
        for s in webRtcServers.values { s.workerClosed() }
        webRtcServers.removeAll()
        observerChannel.emit(.close)
        finishChannels()
    }

    func workerDied(_ reason: String) {
        guard !closed else { return }
        closed = true
        died = true
        logger.debug("worker died", metadata: ["reason": .string(reason)])
        for router in routers.values { router.workerClosed() }
        routers.removeAll()
        for s in webRtcServers.values { s.workerClosed() }
        webRtcServers.removeAll()
        publish(.died(reason))
        observerChannel.emit(.close)
        finishChannels()
    }

    private func finishChannels() {
        metrics?.destroy()
        metrics = nil
        eventChannel.finish()
        observerChannel.finish()
    }

    /// Waits until the forwarder thread has ended and released its sockets.
    public func waitForShutdown() async {
        await forwarder.stop()
    }

    /// The ring carrying packets from this worker to `peer` (created once).
    func pipeLink(to peer: Worker) throws(SFUError) -> UInt32 {
        if let link = pipeLinks[peer.id] { return link }
        guard let index = forwarder.pipeLinkHandles.allocate().map({ UInt32($0.index) }) else { throw .failure("too many pipe links in this worker") }
        let owner = PipeRingOwner(capacity: 1024, consumerEventFd: peer.forwarder.eventFd)
        forwarder.retain(pipe: owner, peer: peer.forwarder)
        peer.forwarder.retain(pipe: owner, peer: forwarder)
        forwarder.send(.addOutboundPipe(index: index, owner.ring))
        peer.forwarder.send(.addInboundPipe(owner.ring))
        pipeLinks[peer.id] = index
        return index
    }

    /// libsrtp with the OpenSSL-backed types, set up once per process.
    func ensureSrtp() throws(SFUError) {
        do { try SrtpLibrary.initialize(openssl: true) } catch { throw .failure("SRTP library failed to initialise: \(error)") }
    }

    func routerClosed(_ router: Router) {
        routers[router.id] = nil
    }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("Worker closed") }
    }

    /// A log level by mediasoup's or swift-log's name.
    public nonisolated static func logLevel(named name: String?) throws(SFUError) -> Logger.Level {
        switch name {
        case nil: return .error
        case "warn": return .warning
        case "none": return .critical // swift-log has no "off"; nothing logs at critical
        case let name?:
            guard let level = Logger.Level(rawValue: name) else {
                throw .invalidArgument("invalid logLevel '\(name)' (debug, warn, error, none, or a swift-log level)")
            }
            return level
        }
    }

    /// Changes settings of a running worker, as mediasoup's
    /// `updateSettings`: the log level (other fields are fixed at creation).
    public func updateSettings(logLevel: String?) throws(SFUError) {
        try checkOpen()
        guard let logLevel else { return }
        logger.logLevel = try Self.logLevel(named: logLevel)
    }

    /// Test hook: makes the forwarder thread fail as on a fatal ring error.
    package func simulateFatalError() {
        forwarder.send(.simulateFatalError)
    }

    /// Test hook: blocks the forwarder thread, as a descheduled or
    /// overloaded worker would be, until the returned hold is released (at
    /// most `limitMilliseconds`), so tests can fill its sockets whatever the
    /// machine's load. Returns once the thread is blocked.
    package func holdForwarder(limitMilliseconds: Int = 10_000) async -> ForwarderHold {
        let hold = ForwarderHold()
        await withCheckedContinuation { (started: CheckedContinuation<Void, Never>) in
            forwarder.send(.barrier {
                started.resume()
                _ = hold.semaphore.wait(timeout: .now() + .milliseconds(limitMilliseconds))
            })
        }
        return hold
    }

    /// Forwarder counters and resources, for dumps, metrics and leak checks
    /// (see Worker+Figures).
    var metrics: WorkerMetrics?

    public func sync() async { await forwarder.barrier() }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var routerIds: [String]
        public var resources: WorkerResourceUsage
    }

    public func dump() async -> Dump {
        Dump(id: id, routerIds: routers.keys, resources: await getResourceUsage())
    }

    // MARK: - Notification taps

    /// Registers a closure that receives every public event of every entity
    /// of this worker, in emission order. Returns a token for `removeTap`.
    @discardableResult
    public func addNotificationTap(_ tap: @escaping @RingSFUActor (EntityNotification) -> Void) -> Int {
        nextTap += 1
        taps[nextTap] = tap
        return nextTap
    }

    public func removeTap(_ token: Int) { taps[token] = nil }

    /// Hands an entity's public event to the taps, in wire form.
    func published(_ event: PublishedEvent) {
        guard !taps.isEmpty else { return }
        let n = EntityNotification(event)
        for tap in taps.values { tap(n) }
    }
}

/// A blocked forwarder thread (see `Worker.holdForwarder`).
package final class ForwarderHold: Sendable {
    fileprivate let semaphore = DispatchSemaphore(value: 0)

    /// Lets the forwarder thread go on.
    package func release() { semaphore.signal() }
}
