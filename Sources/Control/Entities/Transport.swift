import Foundation
import RingSFUForwarder

public enum TransportEvent: Sendable {
    /// The router closed.
    case routerClose
    /// A comedia PlainTransport learnt its remote RTP tuple.
    case tuple(TransportTuple)
    /// A comedia PlainTransport learnt its remote RTCP tuple.
    case rtcpTuple(TransportTuple)
    /// A trace event (`enableTraceEvent`): "bwe".
    case trace(TransportTraceEventData)
    /// The WebRtcServer this transport listened on closed.
    case listenServerClose
    case iceStateChange(IceState)
    case iceSelectedTupleChange(TransportTuple)
    case dtlsStateChange(DtlsState)
    /// WebRtcTransport with `enableSctp`: "connecting", "connected", "failed", "closed".
    case sctpStateChange(String)
    /// RTCP the router sends to a DirectTransport's application (e.g. a key
    /// frame request for one of its producers).
    case rtcp([UInt8])
}

public enum TransportObserverEvent: Sendable {
    case close
    case newProducer(Producer)
    case newConsumer(Consumer)
    case newDataProducer(DataProducer)
    case newDataConsumer(DataConsumer)
    case tuple(TransportTuple)
    case rtcpTuple(TransportTuple)
}

/// An address pair of a transport, with mediasoup's field names.
public struct TransportTuple: Codable, Sendable, Hashable {
    public var localAddress: String
    public var localPort: Int
    public var remoteIp: String?
    public var remotePort: Int?
    public var `protocol`: String

    public init(localAddress: String, localPort: Int, remoteIp: String? = nil, remotePort: Int? = nil, protocol: String = "udp") {
        self.localAddress = localAddress
        self.localPort = localPort
        self.remoteIp = remoteIp
        self.remotePort = remotePort
        self.protocol = `protocol`
    }
}

/// The common part of every transport: producers and consumers, and the
/// closure cascades of `doc/closures.md`.
@RingSFUActor
public class Transport {
    public nonisolated let id: String
    public internal(set) var closed = false
    public var appData: AppData

    weak var router: Router?
    weak var worker: Worker?
    let forwarder: ForwarderWorker
    let handle: Handle
    var producers = OrderedMap<Producer>()
    var consumers = OrderedMap<Consumer>()
    var dataProducers = OrderedMap<DataProducer>()
    var dataConsumers = OrderedMap<DataConsumer>()
    /// One CNAME for all producers of a transport, as mediasoup does.
    var cname: String?
    var nextMid = 0
    let eventChannel = EventChannel<TransportEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: TransportEvent) {
        eventChannel.emit(event)
        worker?.published(.transport(id, event))
    }
    let observerChannel = EventChannel<TransportObserverEvent>()

    init(router: Router, worker: Worker, handle: Handle, appData: AppData) {
        id = UUID().uuidString.lowercased()
        self.router = router
        self.worker = worker
        self.forwarder = worker.forwarder
        self.handle = handle
        self.appData = appData
    }

    public var events: AsyncStream<TransportEvent> { eventChannel.subscribe() }
    public var observer: AsyncStream<TransportObserverEvent> { observerChannel.subscribe() }

    /// Bitrate limits in bits per second (0: none), as last set.
    public internal(set) var maxIncomingBitrate = 0
    public internal(set) var maxOutgoingBitrate = 0
    public internal(set) var minOutgoingBitrate = 0
    /// mediasoup's lowest outgoing bitrate limit.
    static let minimumOutgoingLimit = 30_000

    /// Caps what the remote endpoint sends on this transport: a REMB with
    /// this bitrate (and no SSRCs, so it covers every stream) goes to the
    /// endpoint with the next packet received and then at most every
    /// 1.5 s while media arrives; 0 lifts the cap (four REMBs of 0 tell
    /// the endpoint so). Endpoints that run their own bandwidth estimation,
    /// browsers included, treat it as an upper bound.
    public func setMaxIncomingBitrate(_ bitrate: Int) throws(SFUError) {
        try checkOpen()
        guard (0...Int(UInt32.max)).contains(bitrate) else {
            throw .invalidArgument("invalid bitrate \(bitrate) (0 for none, or bits per second)")
        }
        maxIncomingBitrate = bitrate
        forwarder.send(.setMaxIncomingBitrate(transport: handle, UInt32(bitrate)))
    }

    /// The most RingSFU may send on this transport, for the send-side
    /// bandwidth estimation (>= 30000, >= the minimum, or 0 for none).
    /// Without transport-wide congestion control the value is kept and
    /// reported, as mediasoup does for transports without it.
    public func setMaxOutgoingBitrate(_ bitrate: Int) throws(SFUError) {
        try checkOpen()
        guard bitrate == 0 || (Self.minimumOutgoingLimit...Int(UInt32.max)).contains(bitrate) else {
            throw .invalidArgument("bitrate must be >= \(Self.minimumOutgoingLimit) or 0 (unlimited)")
        }
        guard bitrate == 0 || bitrate >= minOutgoingBitrate else {
            throw .invalidArgument("bitrate must be >= current min outgoing bitrate (\(minOutgoingBitrate)) or 0 (unlimited)")
        }
        maxOutgoingBitrate = bitrate
        forwarder.send(.setOutgoingBitrateBounds(transport: handle, min: UInt32(minOutgoingBitrate), max: UInt32(bitrate)))
    }

    /// The least the send-side bandwidth estimation may assume (>= 30000,
    /// <= the maximum, or 0 for none); kept and reported, as the maximum.
    public func setMinOutgoingBitrate(_ bitrate: Int) throws(SFUError) {
        try checkOpen()
        guard bitrate == 0 || (Self.minimumOutgoingLimit...Int(UInt32.max)).contains(bitrate) else {
            throw .invalidArgument("bitrate must be >= \(Self.minimumOutgoingLimit) or 0 (unlimited)")
        }
        guard bitrate == 0 || maxOutgoingBitrate == 0 || bitrate <= maxOutgoingBitrate else {
            throw .invalidArgument("bitrate must be <= current max outgoing bitrate (\(maxOutgoingBitrate)) or 0 (unlimited)")
        }
        minOutgoingBitrate = bitrate
        forwarder.send(.setOutgoingBitrateBounds(transport: handle, min: UInt32(bitrate), max: UInt32(maxOutgoingBitrate)))
    }

    public var producerCount: Int { producers.count }
    public var consumerCount: Int { consumers.count }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("Transport closed") }
    }

    /// Closes the transport: its producers and consumers emit
    /// `transportClose`; consumers of its producers on other transports then
    /// emit `producerClose`.
    public func close() {
        tearDown(.closed)
    }

    /// Called once the transport is closed, whatever closed it.
    func didClose() {}

    /// The router closed: emits `routerClose`. Nothing is sent to the
    /// forwarder, which tears the router down as a whole.
    func routerClosed() {
        tearDown(.routerClosed)
    }

    /// The WebRtcServer closed: emits `listenServerClose` (the forwarder
    /// closed the server's transports with it).
    func listenServerClosed() {
        tearDown(.listenServerClosed)
    }

    enum CloseCause { case closed, routerClosed, listenServerClosed }

    /// The one close cascade (doc/closures.md), whatever closed the
    /// transport. Only the application's close tells the forwarder (it tore
    /// the rest down itself). Unless the whole router is going, the router
    /// forgets the producers, and consumers of them on other transports get
    /// `producerClose` once this transport is closed; with the router going,
    /// they get `transportClose` from their own transport instead.
    private func tearDown(_ cause: CloseCause) {
        guard !closed else { return }
        closed = true
        if cause == .closed { forwarder.send(.closeTransport(handle)) }
        let routerStays = cause != .routerClosed
        var orphans: [Consumer] = []
        for producer in producers.values {
            if routerStays { orphans += producer.consumers.values }
            producer.transportClosed()
            if routerStays { router?.producerRemoved(producer) }
        }
        producers.removeAll()
        for consumer in consumers.values { consumer.transportClosed() }
        consumers.removeAll()
        var dataOrphans: [DataConsumer] = []
        for dp in dataProducers.values {
            if routerStays {
                dataOrphans += dp.dataConsumers.values
                router?.dataProducers[dp.id] = nil
            }
            dp.transportClosed()
        }
        dataProducers.removeAll()
        for dc in dataConsumers.values { dc.transportClosed() }
        dataConsumers.removeAll()
        router?.transportClosed(self)
        forwarder.transportHandles.release(handle)
        switch cause {
        case .closed: break
        case .routerClosed:
            publish(.routerClose)
        case .listenServerClosed:
            publish(.listenServerClose)
        }
        observerChannel.emit(.close)
        finishChannels()
        // The forwarder freed these along with their producers.
        for consumer in orphans where !consumer.closed { consumer.producerClosed() }
        for dc in dataOrphans where !dc.closed { dc.dataProducerClosed() }
        closeSctp()
        didClose()
    }

    func finishChannels() {
        eventChannel.finish()
        observerChannel.finish()
    }

    func producerRemoved(_ producer: Producer) {
        producers[producer.id] = nil
        router?.producerRemoved(producer)
    }

    func consumerRemoved(_ consumer: Consumer) {
        consumers[consumer.id] = nil
        worker?.registry.remove(consumer)
    }

    func dataProducerRemoved(_ dp: DataProducer) {
        dataProducers[dp.id] = nil
        router?.dataProducers[dp.id] = nil
        worker?.registry.remove(dp)
    }

    func dataConsumerRemoved(_ dc: DataConsumer) {
        dataConsumers[dc.id] = nil
        worker?.registry.remove(dc)
    }

    /// The data producer/consumer type this transport supports (nil: none,
    /// until SCTP exists; DirectTransport says "direct").
    var dataType: String? { sctp != nil ? "sctp" : nil }

    /// Consumer parameters for this transport; pipe transports override it.
    func consumerParameters(for producer: Producer, _ options: ConsumerOptions, remoteIds: Bool) throws(SFUError) -> (RtpParameters, pipe: Bool) {
        let enableRtx = options.enableRtx ?? (producer.kind == .video)
        let pipe = options.pipe ?? false
        let caps = remoteIds ? Ortc.alignExtensionIds(options.rtpCapabilities, to: producer.consumableRtpParameters) : options.rtpCapabilities
        var params = try Ortc.consumerParameters(producer.consumableRtpParameters, caps: caps, enableRtx: enableRtx, pipe: pipe)
        if !pipe {
            if let mid = options.mid { params.mid = mid } else {
                params.mid = String(nextMid)
                nextMid = nextMid >= 100_000_000 ? 0 : nextMid + 1
            }
        }
        return (params, pipe)
    }

    // MARK: - SCTP (data channels)

    /// With `enableSctp`: what the remote's SCTP needs, and the
    /// association's state ("new", "connecting", "connected", "failed",
    /// "closed").
    public var sctpParameters: SctpParameters? { sctp?.parameters }
    public internal(set) var sctpState: String?
    var sctp: SctpAssociation?

    /// The forwarder refused this transport's SRTP keys: it now sends and
    /// accepts nothing in that direction (never plain RTP).
    func srtpFailed(_ reason: String) {
        worker?.logger.debug("transport \(id): SRTP unavailable (\(reason)); its media is dropped")
    }

    // MARK: - Produce / consume

    /// Starts receiving a media stream described by `rtpParameters`.
    public func produce(_ options: ProducerOptions) throws(SFUError) -> Producer {
        try checkOpen()
        guard let router else { throw .invalidState("Transport closed") }
        if let id = options.id, router.producers[id] != nil { throw .invalidArgument("a Producer with same id \"\(id)\" already exists") }
        var params = try Ortc.validate(options.rtpParameters)
        if (params.encodings ?? []).isEmpty { params.encodings = [RtpEncodingParameters()] }
        if cname == nil { cname = params.rtcp?.cname ?? String(UUID().uuidString.prefix(8)).lowercased() }
        params.rtcp?.cname = cname
        let mapping = try Ortc.producerMapping(&params, kind: options.kind, router: router.rtpCapabilities)
        let type = try Producer.type(of: params)
        let consumable = Ortc.consumableParameters(kind: options.kind, params: params, router: router.rtpCapabilities, mapping: mapping)
        // Streams are found by SSRC, then MID, then RID (mediasoup's RtpListener).
        let encodings = params.encodings ?? []
        guard encodings.count <= 4 else { throw .unsupported("at most 4 encodings (simulcast layers) per producer") }
        // One SSRC per encoding (layer), 0 where a RID (or, alone, the MID) finds it.
        let ssrcs = encodings.map { $0.ssrc ?? 0 }
        for (i, e) in encodings.enumerated() where e.ssrc == nil && e.rid == nil && !(encodings.count == 1 && params.mid != nil) {
            throw .invalidArgument("rtpParameters.encodings[\(i)] needs an ssrc or a rid (or the producer a mid) to find the stream by")
        }
        guard let handle = forwarder.producerHandles.allocate() else { throw .failure("too many producers in this worker") }
        let producer = Producer(transport: self, handle: handle, id: options.id, kind: options.kind, rtpParameters: params, type: type, consumableRtpParameters: consumable, paused: options.paused ?? false, appData: options.appData ?? [:])
        forwarder.send(.addProducer(handle: handle, transport: self.handle, producer.forwarderSpec(mapping: mapping, router: router.rtpCapabilities, ssrcs: ssrcs)))
        producers[producer.id] = producer
        worker?.registry.add(producer)
        router.producerAdded(producer)
        observerChannel.emit(.newProducer(producer))
        return producer
    }

    /// Starts sending a producer's media to this transport's remote.
    public func consume(_ options: ConsumerOptions) throws(SFUError) -> Consumer {
        try consume(options, remoteIds: false)
    }

    /// With `remoteIds`, the consumer sends with the payload types and
    /// header extension ids of `options.rtpCapabilities` (an SDP offer's)
    /// instead of the router's, which mediasoup-client's capabilities carry.
    func consume(_ options: ConsumerOptions, remoteIds: Bool) throws(SFUError) -> Consumer {
        try checkOpen()
        guard let router, let worker else { throw .invalidState("Transport closed") }
        guard !options.producerId.isEmpty else { throw .invalidArgument("missing producerId") }
        if let mid = options.mid, mid.isEmpty { throw .invalidArgument("if given, mid must be a non empty string") }
        guard let producer = router.producers[options.producerId] else {
            throw .failure("Producer with id \"\(options.producerId)\" not found")
        }
        var (params, pipe) = try consumerParameters(for: producer, options, remoteIds: remoteIds)
        var wireIds = Ortc.WireIds()
        if remoteIds { wireIds = try Ortc.adoptRemoteIds(&params, caps: options.rtpCapabilities) }
        guard let handle = forwarder.consumerHandles.allocate() else { throw .failure("too many consumers in this worker") }
        let consumer = Consumer(transport: self, producer: producer, handle: handle, kind: producer.kind, rtpParameters: params, type: pipe ? .pipe : ConsumerType(producer.type), paused: options.paused ?? false, producerPaused: producer.paused, appData: options.appData ?? [:])
        consumer.wireIds = wireIds
        consumer.producerLayerCount = producer.rtpParameters.encodings?.count ?? 1
        if consumer.type == .simulcast || consumer.type == .svc {
            let layers = consumer.spatialLayerCount
            let preferred = options.preferredLayers?.spatialLayer ?? layers - 1
            guard (0..<layers).contains(preferred) else { throw .invalidArgument("preferredLayers.spatialLayer must be from 0 to \(layers - 1)") }
            let temporal = max(1, Producer.layers(of: params.encodings?.first?.scalabilityMode ?? "").1)
            if let t = options.preferredLayers?.temporalLayer, !(0..<temporal).contains(t) {
                throw .invalidArgument("preferredLayers.temporalLayer must be from 0 to \(temporal - 1)")
            }
            consumer.preferredLayers = ConsumerLayers(spatialLayer: preferred, temporalLayer: options.preferredLayers?.temporalLayer)
        }
        forwarder.send(.addConsumer(handle: handle, transport: self.handle, producer: producer.handle, consumer.forwarderSpec()))
        consumers[consumer.id] = consumer
        producer.consumers[consumer.id] = consumer
        worker.registry.add(consumer)
        observerChannel.emit(.newConsumer(consumer))
        return consumer
    }

    /// Transport statistics; subclasses add their own fields.
    public func getStats() async throws(SFUError) -> [TransportStats] {
        try checkOpen()
        let c = await forwarder.stats(.transport(handle))
        var s = TransportStats(type: statsType, transportId: id, timestamp: nowMillis(), bytesReceived: c.bytes, bytesSent: c.bytesOut, rtpPacketsReceived: c.packets, rtpPacketsSent: c.packetsOut)
        s.maxIncomingBitrate = maxIncomingBitrate == 0 ? nil : maxIncomingBitrate
        s.maxOutgoingBitrate = maxOutgoingBitrate == 0 ? nil : maxOutgoingBitrate
        s.minOutgoingBitrate = minOutgoingBitrate == 0 ? nil : minOutgoingBitrate
        s.recvBitrate = c.bitrate
        s.sendBitrate = c.sendBitrate
        s.rtcpPacketsReceived = c.rtcpPackets
        s.availableOutgoingBitrate = c.availableOutgoingBitrate == 0 ? nil : Int(c.availableOutgoingBitrate)
        return [s]
    }

    var statsType: String { "transport" }
}
