import Foundation
import RingSFUForwarder

public enum ConsumerEvent: Sendable {
    case transportClose
    case producerClose
    case producerPause
    case producerResume
    /// An RTP packet for the application (consumers of a DirectTransport only).
    case rtp([UInt8])
    /// The consumer's or its producer's score changed.
    case score(ConsumerScore)
    /// A simulcast consumer now forwards another layer (nil: none).
    case layersChange(ConsumerLayers?)
    /// A trace event of an enabled type.
    case trace(TraceEventData)
}

/// Spatial and temporal layer of a simulcast consumer, as mediasoup names them.
public struct ConsumerLayers: Codable, Sendable, Hashable {
    public var spatialLayer: Int
    public var temporalLayer: Int?
    public init(spatialLayer: Int, temporalLayer: Int? = nil) {
        self.spatialLayer = spatialLayer
        self.temporalLayer = temporalLayer
    }
}

/// A consumer's score (0-10, from its endpoint's receiver reports) and its
/// producer's, as mediasoup reports them.
public struct ConsumerScore: Codable, Sendable, Hashable {
    public var score: Int
    public var producerScore: Int
    public var producerScores: [Int]
}

public enum ConsumerObserverEvent: Sendable {
    case close, pause, resume
}

/// A producer's media sent to one endpoint, with its own SSRC, payload
/// types and sequence numbers.
@RingSFUActor
public final class Consumer {
    public nonisolated let id: String
    public nonisolated let producerId: String
    public nonisolated let kind: MediaKind
    public nonisolated let rtpParameters: RtpParameters
    /// `simple`, `simulcast`, `svc` or `pipe`.
    public nonisolated let type: ConsumerType
    public private(set) var paused: Bool
    public private(set) var producerPaused: Bool
    public private(set) var closed = false
    public private(set) var priority = 1
    public var appData: AppData

    weak var transport: Transport?
    weak var producer: Producer?
    /// For a pipe consumer made by pipeToRouter: the producer it feeds.
    weak var pipeProducer: Producer?
    weak var worker: Worker?
    let forwarder: ForwarderWorker
    let handle: Handle
    /// Distinguishes this consumer from later owners of the same handle.
    private let eventChannel = EventChannel<ConsumerEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: ConsumerEvent) {
        eventChannel.emit(event)
        worker?.published(.consumer(id, event))
    }
    private let observerChannel = EventChannel<ConsumerObserverEvent>()

    init(transport: Transport, producer: Producer, handle: Handle, kind: MediaKind, rtpParameters: RtpParameters, type: ConsumerType, paused: Bool, producerPaused: Bool, appData: AppData) {
        id = UUID().uuidString.lowercased()
        producerId = producer.id
        self.transport = transport
        self.producer = producer
        self.worker = transport.worker
        self.forwarder = transport.forwarder
        self.handle = handle
        self.kind = kind
        self.rtpParameters = rtpParameters
        self.type = type
        self.paused = paused
        self.producerPaused = producerPaused
        self.appData = appData
    }

    public var events: AsyncStream<ConsumerEvent> { eventChannel.subscribe() }
    public var observer: AsyncStream<ConsumerObserverEvent> { observerChannel.subscribe() }

    /// The router's payload types and extension ids behind the wire ones
    /// (empty: the same numbers).
    var wireIds = Ortc.WireIds()

    func forwarderSpec() -> ConsumerSpec {
        let pts = rtpParameters.codecs.map { (UInt8(wireIds.routerPayloadType($0.payloadType)), UInt8($0.payloadType)) }
        let exts = (rtpParameters.headerExtensions ?? []).map { (UInt8(wireIds.routerExtensionId($0.id)), UInt8($0.id)) }
        var spec = ConsumerSpec(ssrc: rtpParameters.encodings?.first?.ssrc ?? 0, payloadTypes: pts, extensionIds: exts, paused: paused, producerPaused: producerPaused, waitsForKeyFrame: kind == .video)
        if let mid = rtpParameters.mid, let ext = rtpParameters.headerExtensions?.first(where: { $0.uri == SupportedRtpCapabilities.Uri.mid }) {
            spec.mid = Array(mid.utf8)
            spec.midExtensionId = UInt8(ext.id)
        }
        spec.cname = Array((rtpParameters.rtcp?.cname ?? "").utf8.prefix(64))
        if let twcc = rtpParameters.headerExtensions?.first(where: { $0.uri == SupportedRtpCapabilities.Uri.transportWideCc }), (1...255).contains(twcc.id) {
            spec.transportCcExtensionId = UInt8(twcc.id)
        }
        if type == .simulcast {
            spec.simulcast = true
            spec.preferredLayer = preferredLayers?.spatialLayer ?? producerLayerCount - 1
        }
        spec.priority = UInt8(clamping: max(1, priority))
        if type == .simulcast { spec.temporalLayer = Self.temporalTarget(preferredLayers?.temporalLayer) }
        if type == .svc {
            spec.svc = true
            spec.preferredLayer = preferredLayers?.spatialLayer ?? spatialLayerCount - 1
            spec.temporalLayer = Self.temporalTarget(preferredLayers?.temporalLayer)
        }
        let encodings = rtpParameters.encodings ?? []
        if type == .pipe && encodings.count > 1 {
            spec.layerSsrcs = encodings.map { $0.ssrc ?? 0 }
            spec.layerRtxSsrcs = encodings.map { $0.rtx?.ssrc ?? 0 }
        }
        let media = rtpParameters.codecs.first { !$0.mimeType.isRtxMime }
        spec.nack = (media?.rtcpFeedback ?? []).contains { $0.type == "nack" && ($0.parameter ?? "").isEmpty }
        if let rtx = rtpParameters.encodings?.first?.rtx?.ssrc {
            spec.rtxSsrc = rtx
            spec.rtxPayloadTypes = rtpParameters.codecs.compactMap { c in
                guard c.mimeType.isRtxMime, let apt = c.parameters?["apt"]?.intValue else { return nil }
                return (UInt8(wireIds.routerPayloadType(apt)), UInt8(c.payloadType))
            }
        }
        return spec
    }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("Consumer closed") }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        forwarder.send(.closeConsumer(handle))
        detach()
        observerChannel.emit(.close)
        finishChannels()
    }

    func transportClosed() {
        guard !closed else { return }
        closed = true
        producer?.consumerRemoved(self)
        worker?.registry.remove(self)
        forwarder.consumerHandles.release(handle)
        publish(.transportClose)
        observerChannel.emit(.close)
        finishChannels()
    }

    /// The producer closed; the forwarder already dropped this consumer.
    func producerClosed() {
        guard !closed else { return }
        closed = true
        detach()
        publish(.producerClose)
        observerChannel.emit(.close)
        finishChannels()
    }

    private func detach() {
        transport?.consumerRemoved(self)
        producer?.consumerRemoved(self)
        forwarder.consumerHandles.release(handle)
    }

    private func finishChannels() {
        eventChannel.finish()
        observerChannel.finish()
        // A pipe consumer's far side goes with it.
        if let pipeProducer, !pipeProducer.closed { pipeProducer.close() }
    }

    public private(set) var score = ConsumerScore(score: 10, producerScore: 10, producerScores: [10])
    /// Simulcast consumers: the layer asked for, and the one being forwarded.
    public internal(set) var preferredLayers: ConsumerLayers?
    public private(set) var currentLayers: ConsumerLayers?

    /// Simulcast: forward this spatial layer when it is active (else the
    /// highest active one below it); the switch happens on its next key
    /// frame, which is asked for at once. `temporalLayer` (VP8 streams
    /// with temporal layers): forward that layer and the ones below it
    /// (fewer frames per second); nil for all of them.
    public func setPreferredLayers(_ layers: ConsumerLayers) throws(SFUError) {
        try checkOpen()
        guard type == .simulcast || type == .svc else { throw .unsupported("setPreferredLayers() is for simulcast and SVC consumers") }
        let count = spatialLayerCount
        guard (0..<count).contains(layers.spatialLayer) else { throw .invalidArgument("spatialLayer must be from 0 to \(count - 1)") }
        if let t = layers.temporalLayer {
            guard (0..<max(1, temporalLayerCount)).contains(t) else {
                throw .invalidArgument("temporalLayer must be from 0 to \(max(1, temporalLayerCount) - 1)")
            }
        }
        preferredLayers = layers
        forwarder.send(.setConsumerPreferredLayers(handle, spatial: layers.spatialLayer, temporal: Self.temporalTarget(layers.temporalLayer)))
    }

    var producerLayerCount = 1

    /// Spatial layers to choose from: a simulcast producer's encodings, an
    /// SVC stream's spatial layers (from its scalabilityMode, `LxTy`).
    var spatialLayerCount: Int {
        type == .svc ? max(1, Producer.layers(of: rtpParameters.encodings?.first?.scalabilityMode ?? "").0) : producerLayerCount
    }

    /// Temporal layers of the stream (from its scalabilityMode, `LxTy`).
    var temporalLayerCount: Int { Producer.layers(of: rtpParameters.encodings?.first?.scalabilityMode ?? "").1 }

    static func temporalTarget(_ layer: Int?) -> UInt8 { layer.map { UInt8(clamping: $0) } ?? TemporalLayerFilter.all }

    func layerChanged(_ layer: Int, temporal: UInt8) {
        guard !closed else { return }
        let t = temporal == TemporalLayerFilter.all ? max(0, temporalLayerCount - 1) : Int(temporal)
        let new = layer < 0 ? nil : ConsumerLayers(spatialLayer: layer, temporalLayer: t)
        guard new != currentLayers else { return }
        currentLayers = new
        publish(.layersChange(new))
    }

    /// Reports trace events of these types ("rtp", "keyframe", "nack",
    /// "pli", "fir", "sr"); an empty list turns tracing off.
    public func enableTraceEvent(types: [String]) throws(SFUError) {
        try checkOpen()
        forwarder.send(.setConsumerTrace(handle, try Trace.mask(types)))
    }

    func traced(_ r: TraceRecord) {
        guard !closed else { return }
        let data = Trace.data(r)
        publish(.trace(data))
    }

    func scoreChanged(_ value: UInt8, producerScore: UInt8) {
        guard !closed else { return }
        let new = ConsumerScore(score: Int(value), producerScore: Int(producerScore), producerScores: [Int(producerScore)])
        guard new != score else { return }
        score = new
        publish(.score(new))
    }

    func directRtp(_ packet: [UInt8]) {
        guard !closed else { return }
        publish(.rtp(packet))
    }

    func producerPausedChanged(_ value: Bool) {
        guard !closed, producerPaused != value else { return }
        producerPaused = value
        publish(value ? .producerPause : .producerResume)
        if !paused { observerChannel.emit(value ? .pause : .resume) }
        if let pipeProducer, !pipeProducer.closed {
            if value { try? pipeProducer.pause() } else { try? pipeProducer.resume() }
        }
    }

    public func pause() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = true
        forwarder.send(.setConsumerPaused(handle, true))
        if !was && !producerPaused { observerChannel.emit(.pause) }
    }

    public func resume() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = false
        forwarder.send(.setConsumerPaused(handle, false))
        if was && !producerPaused { observerChannel.emit(.resume) }
    }

    /// Asks the producer's endpoint for a key frame (PLI, or FIR where only
    /// that was negotiated). Requests from many consumers are coalesced.
    public func requestKeyFrame() throws(SFUError) {
        try checkOpen()
        guard kind == .video else { return }
        forwarder.send(.requestKeyFrame(consumer: handle))
    }

    /// The consumer's share of its transport's available outgoing bitrate
    /// (1-255, default 1): in each allocation round a consumer of priority
    /// p may go up p layers before the next one's turn.
    public func setPriority(_ value: Int) throws(SFUError) {
        try checkOpen()
        guard (1...255).contains(value) else { throw .invalidArgument("priority must be from 1 to 255") }
        priority = value
        forwarder.send(.setConsumerPriority(handle, UInt8(value)))
    }

    /// Back to the default priority (1).
    public func unsetPriority() throws(SFUError) {
        try setPriority(1)
    }

    public func getStats() async throws(SFUError) -> [RtpStreamStats] {
        try checkOpen()
        let c = await forwarder.stats(.consumer(handle))
        let codec = rtpParameters.codecs.first { !$0.mimeType.isRtxMime }!
        return [RtpStreamStats(type: "outbound-rtp", timestamp: nowMillis(), ssrc: rtpParameters.encodings?.first?.ssrc ?? 0, kind: kind, mimeType: codec.mimeType, packetCount: c.packetsOut, byteCount: c.bytesOut, packetsDiscarded: c.dropped, score: Int(c.score), nackCount: c.nack, pliCount: c.pli, firCount: c.fir, packetsRetransmitted: c.retransmitted,
                               retransmissionMisses: c.retransmissionMisses, packetsLost: c.packetsLost, fractionLost: Int(c.fractionLost), jitter: c.jitter, roundTripTime: c.roundTripTimeMs > 0 ? c.roundTripTimeMs : nil, bitrate: c.bitrate)]
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var producerId: String
        public var kind: MediaKind
        public var type: ConsumerType
        public var rtpParameters: RtpParameters
        public var paused: Bool
        public var producerPaused: Bool
        public var priority: Int
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, producerId: producerId, kind: kind, type: type, rtpParameters: rtpParameters, paused: paused, producerPaused: producerPaused, priority: priority)
    }
}
