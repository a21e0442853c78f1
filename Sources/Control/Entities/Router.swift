import Foundation
import RingSFUForwarder

public enum RouterEvent: Sendable {
    /// The worker closed or died.
    case workerClose
}

public enum RouterObserverEvent: Sendable {
    case close
    case newTransport(Transport)
    case newRtpObserver(RtpObserver)
}

/// A router: a media room. It owns transports, and producers of any of its
/// transports can be consumed on any other.
@RingSFUActor
public final class Router {
    public nonisolated let id: String
    public nonisolated let rtpCapabilities: RtpCapabilities
    public private(set) var closed = false
    public var appData: AppData

    weak var worker: Worker?
    let forwarder: ForwarderWorker
    let handle: Handle
    var transports = OrderedMap<Transport>()
    var producers: [String: Producer] = [:]
    var rtpObservers = OrderedMap<RtpObserver>()
    var dataProducers: [String: DataProducer] = [:]
    /// In-process pipe pairs to other routers, by the other router's id.
    var pipePairs: [String: (local: PipeTransport, remote: PipeTransport)] = [:]
    private let eventChannel = EventChannel<RouterEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: RouterEvent) {
        eventChannel.emit(event)
        worker?.published(.router(id, event))
    }
    private let observerChannel = EventChannel<RouterObserverEvent>()

    init(worker: Worker, handle: Handle, rtpCapabilities: RtpCapabilities, appData: AppData) {
        id = UUID().uuidString.lowercased()
        self.worker = worker
        self.forwarder = worker.forwarder
        self.handle = handle
        self.rtpCapabilities = rtpCapabilities
        self.appData = appData
    }

    public var events: AsyncStream<RouterEvent> { eventChannel.subscribe() }
    public var observer: AsyncStream<RouterObserverEvent> { observerChannel.subscribe() }

    public var transportCount: Int { transports.count }

    /// Closes the router and, silently, everything in it: each transport
    /// emits `routerClose`.
    public func close() {
        guard !closed else { return }
        closed = true
        forwarder.send(.closeRouter(handle))
        closeChildren()
        worker?.routerClosed(self)
        forwarder.routerHandles.release(handle)
        observerChannel.emit(.close)
        finishChannels()
    }

    /// The worker closed or died: emits `workerClose`.
    func workerClosed() {
        guard !closed else { return }
        closed = true
        closeChildren()
        forwarder.routerHandles.release(handle)
        publish(.workerClose)
        observerChannel.emit(.close)
        finishChannels()
    }

    private func closeChildren() {
        for transport in transports.values { transport.routerClosed() }
        transports.removeAll()
        producers = [:]
        for o in rtpObservers.values { o.routerClosed() }
        rtpObservers.removeAll()
        dataProducers = [:]
    }

    private func finishChannels() {
        eventChannel.finish()
        observerChannel.finish()
    }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("Router closed") }
    }

    // MARK: - Transports

    /// Creates a plain RTP transport (no ICE, no DTLS): for ffmpeg,
    /// GStreamer, and RTP from other servers.
    public func createPlainTransport(_ options: PlainTransportOptions) throws(SFUError) -> PlainTransport {
        try checkOpen()
        guard let worker else { throw .invalidState("Router closed") }
        let transport = try PlainTransport.make(router: self, worker: worker, options: options)
        register(transport)
        return transport
    }

    /// Creates a transport whose media the application sends and receives itself.
    public func createDirectTransport(_ options: DirectTransportOptions = DirectTransportOptions()) throws(SFUError) -> DirectTransport {
        try checkOpen()
        guard let worker else { throw .invalidState("Router closed") }
        let transport = try DirectTransport.make(router: self, worker: worker, options: options)
        register(transport)
        return transport
    }

    /// Creates a WebRTC transport (ICE-lite, DTLS, SRTP) for a browser or a
    /// WebRTC client library.
    public func createWebRtcTransport(_ options: WebRtcTransportOptions, webRtcServer: WebRtcServer? = nil) throws(SFUError) -> WebRtcTransport {
        try checkOpen()
        guard let worker else { throw .invalidState("Router closed") }
        var server = webRtcServer
        if server == nil, let id = options.webRtcServerId {
            guard let s = worker.webRtcServers[id] else { throw .invalidArgument("unknown webRtcServerId \"\(id)\"") }
            server = s
        }
        let transport = try WebRtcTransport.make(router: self, worker: worker, options: options, server: server)
        register(transport)
        return transport
    }

    /// Creates a pipe transport over UDP, to be `connect`ed to the other end
    /// (a router in another process or host).
    public func createPipeTransport(_ options: PipeTransportOptions) throws(SFUError) -> PipeTransport {
        try checkOpen()
        guard let worker else { throw .invalidState("Router closed") }
        let transport = try PipeTransport.make(router: self, worker: worker, options: options)
        register(transport)
        return transport
    }

    /// What `pipeToRouter` created: the consumer in this router and the
    /// producer (with the same id as the original) in the other.
    public struct PipeToRouterResult: Sendable {
        public var pipeConsumer: Consumer
        public var pipeProducer: Producer
    }

    /// Makes a producer of this router available in `router` (which may live
    /// on another worker of this process): a pipe consumer here feeds a pipe
    /// producer there, with the original producer's id, through a ring in
    /// memory. Closing, pausing and resuming propagate across the pipe.
    public func pipeToRouter(producerId: String, router other: Router) throws(SFUError) -> PipeToRouterResult {
        try checkPipeDestination(other)
        guard let producer = producers[producerId] else { throw .failure("Producer with id \"\(producerId)\" not found") }
        guard other.producers[producerId] == nil else {
            throw .invalidState("Producer \"\(producerId)\" is already piped to that Router")
        }
        let pair = try pipePair(to: other)
        let pipeConsumer = try pair.local.consume(ConsumerOptions(producerId: producerId, rtpCapabilities: RtpCapabilities()))
        let pipeProducer: Producer
        do {
            pipeProducer = try pair.remote.produce(ProducerOptions(id: producer.id, kind: pipeConsumer.kind, rtpParameters: pipeConsumer.rtpParameters, paused: pipeConsumer.producerPaused, appData: producer.appData))
        } catch {
            pipeConsumer.close()
            throw error
        }
        pipeConsumer.pipeProducer = pipeProducer
        pipeProducer.pipeConsumer = pipeConsumer
        return PipeToRouterResult(pipeConsumer: pipeConsumer, pipeProducer: pipeProducer)
    }

    private func checkPipeDestination(_ other: Router) throws(SFUError) {
        try checkOpen()
        try other.checkOpen()
        guard other !== self else { throw .invalidArgument("cannot use this Router as destination") }
    }

    /// The in-process pipe pair to `other`, made on first use.
    private func pipePair(to other: Router) throws(SFUError) -> (local: PipeTransport, remote: PipeTransport) {
        if let existing = pipePairs[other.id] { return existing }
        let (a, b) = try PipeTransport.makePair(self, other)
        register(a)
        other.register(b)
        pipePairs[other.id] = (a, b)
        other.pipePairs[id] = (b, a)
        return (a, b)
    }

    /// What `pipeToRouter(dataProducerId:)` created.
    public struct PipeToRouterDataResult: Sendable {
        public var pipeDataConsumer: DataConsumer
        public var pipeDataProducer: DataProducer
    }

    /// Makes a data producer of this router available in `router`: a pipe
    /// data consumer here hands each message to a pipe data producer there
    /// (same id, label, protocol and stream parameters as the original).
    /// Closing either, pausing and resuming propagate as for media pipes.
    public func pipeToRouter(dataProducerId: String, router other: Router) throws(SFUError) -> PipeToRouterDataResult {
        try checkPipeDestination(other)
        guard let dataProducer = dataProducers[dataProducerId] else { throw .failure("DataProducer with id \"\(dataProducerId)\" not found") }
        guard other.dataProducers[dataProducerId] == nil else {
            throw .invalidState("DataProducer \"\(dataProducerId)\" is already piped to that Router")
        }
        let pair = try pipePair(to: other)
        pair.local.makingPipeDataConsumer = true
        defer { pair.local.makingPipeDataConsumer = false }
        let pipeDataConsumer = try pair.local.consumeData(DataConsumerOptions(dataProducerId: dataProducerId))
        let pipeDataProducer: DataProducer
        do {
            // The pipe's own stream, as the pipe data consumer got it.
            pipeDataProducer = try pair.remote.produceData(DataProducerOptions(
                id: dataProducer.id, sctpStreamParameters: pipeDataConsumer.sctpStreamParameters, label: dataProducer.label, protocol: dataProducer.protocol,
                paused: pipeDataConsumer.dataProducerPaused, appData: dataProducer.appData))
        } catch {
            pipeDataConsumer.close()
            throw error
        }
        pipeDataConsumer.pipeDataProducer = pipeDataProducer
        pipeDataProducer.pipeDataConsumer = pipeDataConsumer
        return PipeToRouterDataResult(pipeDataConsumer: pipeDataConsumer, pipeDataProducer: pipeDataProducer)
    }

    func pipePairClosed(_ transport: PipeTransport) {
        for (key, pair) in pipePairs where pair.local === transport || pair.remote === transport {
            pipePairs[key] = nil
        }
    }

    /// Creates an observer reporting the loudest audio producers.
    public func createAudioLevelObserver(_ options: AudioLevelObserverOptions = AudioLevelObserverOptions()) throws(SFUError) -> AudioLevelObserver {
        try checkOpen()
        guard let worker else { throw .invalidState("Router closed") }
        let o = try AudioLevelObserver.make(router: self, worker: worker, options: options)
        registerObserver(o, worker: worker)
        return o
    }

    /// Creates an observer telling which audio producer is the dominant speaker.
    public func createActiveSpeakerObserver(_ options: ActiveSpeakerObserverOptions = ActiveSpeakerObserverOptions()) throws(SFUError) -> ActiveSpeakerObserver {
        try checkOpen()
        guard let worker else { throw .invalidState("Router closed") }
        let o = try ActiveSpeakerObserver.make(router: self, worker: worker, options: options)
        registerObserver(o, worker: worker)
        return o
    }

    private func registerObserver(_ o: RtpObserver, worker: Worker) {
        rtpObservers[o.id] = o
        worker.registry.add(o)
        observerChannel.emit(.newRtpObserver(o))
    }

    func observerClosed(_ o: RtpObserver) {
        rtpObservers[o.id] = nil
        worker?.registry.remove(o)
    }

    func register(_ transport: Transport) {
        transports[transport.id] = transport
        worker?.registry.add(transport)
        observerChannel.emit(.newTransport(transport))
    }

    func transportClosed(_ transport: Transport) {
        transports[transport.id] = nil
        worker?.registry.remove(transport)
    }

    // MARK: - Producers

    func producerAdded(_ producer: Producer) {
        producers[producer.id] = producer
    }

    func producerRemoved(_ producer: Producer) {
        producers[producer.id] = nil
    }

    /// The producer with that id in this router (its own, or one piped in).
    public func producer(id: String) -> Producer? { producers[id] }

    /// Whether a consumer with `rtpCapabilities` could consume the producer.
    public func canConsume(producerId: String, rtpCapabilities: RtpCapabilities) -> Bool {
        guard let producer = producers[producerId] else { return false }
        return (try? Ortc.canConsume(producer.consumableRtpParameters, caps: rtpCapabilities)) ?? false
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var transportIds: [String]
        public var producerIds: [String]
        public var rtpCapabilities: RtpCapabilities
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, transportIds: transports.keys, producerIds: producers.keys.sorted(), rtpCapabilities: rtpCapabilities)
    }
}
