import Foundation
import RingSFUForwarder

public enum ProducerEvent: Sendable {
    /// The producer's transport closed.
    case transportClose
    /// The stream's score changed (0-10, from its packet loss after repair).
    case score([ProducerScore])
    /// A trace event of an enabled type.
    case trace(TraceEventData)
}

/// A producer stream's score, as mediasoup reports it.
public struct ProducerScore: Codable, Sendable, Hashable {
    public var encodingIdx: Int
    public var ssrc: UInt32
    public var rid: String?
    public var score: Int
}

public enum ProducerObserverEvent: Sendable {
    case close, pause, resume
}

/// A media stream received by the router from one endpoint.
@RingSFUActor
public final class Producer {
    public nonisolated let id: String
    public nonisolated let kind: MediaKind
    public nonisolated let rtpParameters: RtpParameters
    /// `simple`, `simulcast` or `svc`.
    public nonisolated let type: ProducerType
    public nonisolated let consumableRtpParameters: RtpParameters
    public private(set) var paused: Bool
    public private(set) var closed = false
    /// Per encoding; 10 until measured.
    public private(set) var score: [ProducerScore] = []
    public var appData: AppData

    weak var transport: Transport?
    weak var worker: Worker?
    let forwarder: ForwarderWorker
    let handle: Handle
    var consumers = OrderedMap<Consumer>()
    /// For a pipe producer made by pipeToRouter: the consumer feeding it.
    weak var pipeConsumer: Consumer?
    /// RTP observers watching this producer.
    var observers: [String: RtpObserver] = [:]
    private let eventChannel = EventChannel<ProducerEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: ProducerEvent) {
        eventChannel.emit(event)
        worker?.published(.producer(id, event))
    }
    private let observerChannel = EventChannel<ProducerObserverEvent>()

    init(transport: Transport, handle: Handle, id: String?, kind: MediaKind, rtpParameters: RtpParameters, type: ProducerType, consumableRtpParameters: RtpParameters, paused: Bool, appData: AppData) {
        self.id = id ?? UUID().uuidString.lowercased()
        self.transport = transport
        self.worker = transport.worker
        self.forwarder = transport.forwarder
        self.handle = handle
        self.kind = kind
        self.rtpParameters = rtpParameters
        self.type = type
        self.consumableRtpParameters = consumableRtpParameters
        self.paused = paused
        self.appData = appData
    }

    public var events: AsyncStream<ProducerEvent> { eventChannel.subscribe() }

    /// Reports trace events of these types ("rtp", "keyframe", "nack",
    /// "pli", "fir", "sr"); an empty list turns tracing off. "rtp" reports
    /// every packet: for debugging, not for production load.
    public func enableTraceEvent(types: [String]) throws(SFUError) {
        try checkOpen()
        forwarder.send(.setProducerTrace(handle, try Trace.mask(types)))
    }

    func traced(_ r: TraceRecord) {
        guard !closed else { return }
        let data = Trace.data(r)
        publish(.trace(data))
    }

    func scoreChanged(layer: Int, _ value: UInt8) {
        guard !closed else { return }
        let encodings = rtpParameters.encodings ?? []
        if score.count != encodings.count {
            score = encodings.enumerated().map { i, e in ProducerScore(encodingIdx: i, ssrc: e.ssrc ?? 0, rid: e.rid, score: 10) }
        }
        guard layer < score.count else { return }
        score[layer].score = Int(value)
        publish(.score(score))
    }
    public var observer: AsyncStream<ProducerObserverEvent> { observerChannel.subscribe() }

    public var consumerCount: Int { consumers.count }

    /// mediasoup's rule: one encoding without layers is simple; several
    /// encodings (VP8/H264) or temporal layers of VP8/H264 are simulcast;
    /// spatial/temporal layers of VP9, H264-SVC or AV1 are SVC.
    nonisolated static func type(of params: RtpParameters) throws(SFUError) -> ProducerType {
        let encodings = params.encodings ?? []
        let media = params.codecs.first { !$0.mimeType.isRtxMime }!.mimeType.lowercased()
        if encodings.count > 1 {
            guard media == "video/vp8" || media == "video/h264" else {
                throw .invalidArgument("\(media) codec not supported for simulcast")
            }
            return .simulcast
        }
        let mode = encodings.first?.scalabilityMode ?? ""
        let (spatial, temporal) = layers(of: mode)
        if spatial > 1 || temporal > 1 {
            switch media {
            case "video/vp9", "video/h264-svc", "video/av1": return .svc
            case "video/vp8", "video/h264": return .simulcast
            default: throw .invalidArgument("invalid RTP parameters: scalabilityMode \(mode) not supported for \(media)")
            }
        }
        return .simple
    }

    nonisolated static func layers(of mode: String) -> (Int, Int) {
        guard let first = mode.first, first == "L" || first == "S", let t = mode.firstIndex(of: "T") else { return (1, 1) }
        let s = Int(mode[mode.index(after: mode.startIndex)..<t]) ?? 1
        let tl = Int(mode[mode.index(after: t)...].prefix { $0.isNumber }) ?? 1
        return (s, tl)
    }

    func forwarderSpec(mapping: Ortc.RtpMapping, router caps: RtpCapabilities, ssrcs: [UInt32]) -> ProducerSpec {
        let pts = mapping.codecs.map { (UInt8($0.payloadType), UInt8($0.mappedPayloadType)) }
        let codecs: [(UInt8, KeyFrameCodec)] = (caps.codecs ?? []).compactMap { c in
            guard let pt = c.preferredPayloadType else { return nil }
            let codec: KeyFrameCodec = switch c.mimeType.lowercased() {
            case "video/vp8": .vp8
            case "video/vp9": .vp9
            case "video/h264", "video/h264-svc": .h264
            case "video/h265": .h265
            case "video/av1": .av1
            default: .none
            }
            return (UInt8(pt), codec)
        }
        // Producer extension ids -> the router's ids for the same URI.
        var exts: [(UInt8, UInt8)] = []
        for e in rtpParameters.headerExtensions ?? [] {
            if let r = (caps.headerExtensions ?? []).first(where: { $0.kind == kind && $0.uri == e.uri }) {
                exts.append((UInt8(e.id), UInt8(r.preferredId)))
            }
        }
        let audioLevel = (caps.headerExtensions ?? []).first { $0.kind == .audio && $0.uri == SupportedRtpCapabilities.Uri.audioLevel }
        let producerSendsLevels = (rtpParameters.headerExtensions ?? []).contains { $0.uri == SupportedRtpCapabilities.Uri.audioLevel }
        var spec = ProducerSpec(isVideo: kind == .video, ssrcs: ssrcs, payloadTypes: pts, codecs: codecs, extensionIds: exts, paused: paused,
                                audioLevelId: kind == .audio && producerSendsLevels ? UInt8(audioLevel?.preferredId ?? 0) : 0)
        // Key frames are asked for with PLI, or with FIR where only that was negotiated.
        let feedbackCodec = rtpParameters.codecs.first { !$0.mimeType.isRtxMime }
        let feedback = feedbackCodec?.rtcpFeedback ?? []
        let pli = feedback.contains { $0.type == "nack" && $0.parameter == "pli" }
        let fir = feedback.contains { $0.type == "ccm" && $0.parameter == "fir" }
        spec.useFir = fir && !pli
        let ownIds = Set((rtpParameters.headerExtensions ?? []).map(\.uri))
        if kind == .video, !ownIds.contains(SupportedRtpCapabilities.Uri.transportWideCc),
           let twcc = (caps.headerExtensions ?? []).first(where: { $0.kind == .video && $0.uri == SupportedRtpCapabilities.Uri.transportWideCc }) {
            spec.addTransportWideId = UInt8(clamping: twcc.preferredId)
        }
        let mode = rtpParameters.encodings?.first?.scalabilityMode ?? ""
        let h264Temporal = type == .simulcast && feedbackCodec?.mimeType.lowercased() == "video/h264" && Self.layers(of: mode).1 > 1
        if kind == .video, type == .svc || h264Temporal {
            spec.layered = true
            if ownIds.contains(SupportedRtpCapabilities.Uri.dependencyDescriptor),
               let dd = (caps.headerExtensions ?? []).first(where: { $0.kind == .video && $0.uri == SupportedRtpCapabilities.Uri.dependencyDescriptor }) {
                spec.dependencyDescriptorId = UInt8(clamping: dd.preferredId)
            }
        }
        if type == .svc, kind == .video {
            spec.svcSpatialLayers = UInt8(clamping: min(4, Self.layers(of: rtpParameters.encodings?.first?.scalabilityMode ?? "").0))
        }
        let mediaCodec = rtpParameters.codecs.first { !$0.mimeType.isRtxMime }
        spec.clockRate = UInt32(mediaCodec?.clockRate ?? 90_000)
        spec.nack = feedback.contains { $0.type == "nack" && ($0.parameter ?? "").isEmpty }
        let encodings = rtpParameters.encodings ?? []
        spec.rtxSsrcs = encodings.map { $0.rtx?.ssrc ?? 0 }
        if encodings.contains(where: { $0.rtx != nil }) {
            spec.rtxPayloadTypes = rtpParameters.codecs.compactMap { c in
                guard c.mimeType.isRtxMime, let apt = c.parameters?["apt"]?.intValue else { return nil }
                return (UInt8(c.payloadType), UInt8(apt))
            }
        }
        let own = rtpParameters.headerExtensions ?? []
        if let mid = rtpParameters.mid, let e = own.first(where: { $0.uri == SupportedRtpCapabilities.Uri.mid }) {
            spec.mid = Array(mid.utf8)
            spec.midExtensionId = UInt8(e.id)
        }
        // Congestion feedback to the sender, mediasoup's rule: transport-wide
        // CC when both its extension and feedback were negotiated, else REMB.
        let negotiated = rtpParameters.codecs.flatMap { $0.rtcpFeedback ?? [] }
        if negotiated.contains(where: { $0.type == "transport-cc" }),
           let e = own.first(where: { $0.uri == SupportedRtpCapabilities.Uri.transportWideCc }), (1...255).contains(e.id) {
            spec.transportCcExtensionId = UInt8(e.id)
        } else if negotiated.contains(where: { $0.type == "goog-remb" }) {
            spec.remb = true
        }
        if let e = own.first(where: { $0.uri == SupportedRtpCapabilities.Uri.rid }), encodings.contains(where: { $0.rid != nil }) {
            spec.rids = encodings.map { Array(($0.rid ?? "").utf8) }
            spec.ridExtensionId = UInt8(e.id)
            if let r = own.first(where: { $0.uri == SupportedRtpCapabilities.Uri.rrid }), (1...255).contains(r.id) {
                spec.rridExtensionId = UInt8(r.id)
            }
        }
        return spec
    }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("Producer closed") }
    }

    /// Closes the producer; its consumers then emit `producerClose`.
    public func close() {
        guard !closed else { return }
        closed = true
        forwarder.send(.closeProducer(handle))
        leaveObservers()
        transport?.producerRemoved(self)
        worker?.registry.remove(self)
        forwarder.producerHandles.release(handle)
        observerChannel.emit(.close)
        finishChannels()
        let orphans = consumers.values
        consumers.removeAll()
        for consumer in orphans { consumer.producerClosed() }
        closePipeConsumer()
    }

    func transportClosed() {
        guard !closed else { return }
        closed = true
        leaveObservers()
        worker?.registry.remove(self)
        forwarder.producerHandles.release(handle)
        publish(.transportClose)
        observerChannel.emit(.close)
        finishChannels()
        closePipeConsumer()
    }

    private func leaveObservers() {
        for o in observers.values { o.producerClosed(self) }
        observers = [:]
    }

    private func finishChannels() {
        eventChannel.finish()
        observerChannel.finish()
    }

    /// A pipe producer's near side goes with it.
    private func closePipeConsumer() {
        if let pipeConsumer, !pipeConsumer.closed { pipeConsumer.close() }
    }

    func consumerRemoved(_ consumer: Consumer) {
        consumers[consumer.id] = nil
    }

    /// Stops forwarding to every consumer; they emit `producerPause`.
    public func pause() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = true
        forwarder.send(.setProducerPaused(handle, true))
        guard !was else { return }
        observerChannel.emit(.pause)
        for consumer in consumers.values { consumer.producerPausedChanged(true) }
    }

    /// Resumes forwarding; video consumers restart on a key frame.
    public func resume() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = false
        forwarder.send(.setProducerPaused(handle, false))
        guard was else { return }
        observerChannel.emit(.resume)
        for consumer in consumers.values { consumer.producerPausedChanged(false) }
    }

    /// Sends an RTP packet of this producer (producers of a DirectTransport only).
    public func send(rtpPacket packet: [UInt8]) throws(SFUError) {
        try checkOpen()
        guard let direct = transport as? DirectTransport else {
            throw .invalidState("send() is only for producers of a DirectTransport")
        }
        try direct.check(packet, what: "rtpPacket")
        forwarder.send(.injectRtp(transport: direct.handle, packet))
    }

    public func getStats() async throws(SFUError) -> [RtpStreamStats] {
        try checkOpen()
        let codec = rtpParameters.codecs.first { !$0.mimeType.isRtxMime }!
        // One entry per encoding (simulcast layer), as mediasoup reports them.
        let encodings = rtpParameters.encodings ?? []
        var out: [RtpStreamStats] = []
        for layer in 0..<max(1, encodings.count) {
            let c = await forwarder.stats(.producerLayer(handle, layer))
            var s = RtpStreamStats(type: "inbound-rtp", timestamp: nowMillis(), ssrc: c.ssrc != 0 ? c.ssrc : (encodings.first?.ssrc ?? 0), kind: kind, mimeType: codec.mimeType, packetCount: c.packets, byteCount: c.bytes, packetsDiscarded: c.dropped, score: Int(c.score), nackCount: c.nack, pliCount: c.pli, firCount: c.fir,
                                   packetsLost: c.packetsLost, fractionLost: Int(c.fractionLost), jitter: c.jitter, packetsRepaired: c.packetsRepaired, nackPacketCount: c.nackedPackets, bitrate: c.bitrate)
            if layer < encodings.count { s.rid = encodings[layer].rid }
            out.append(s)
        }
        return out
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var kind: MediaKind
        public var type: ProducerType
        public var rtpParameters: RtpParameters
        public var consumableRtpParameters: RtpParameters
        public var paused: Bool
        public var consumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, kind: kind, type: type, rtpParameters: rtpParameters, consumableRtpParameters: consumableRtpParameters, paused: paused, consumerIds: consumers.keys)
    }
}

/// How a producer's stream is layered (mediasoup's names).
public enum ProducerType: String, Sendable, Codable {
    case simple, simulcast, svc
}

/// How a consumer forwards its producer (mediasoup's names): one stream,
/// one simulcast layer at a time, SVC layers, or everything as is (pipe).
public enum ConsumerType: String, Sendable, Codable {
    case simple, simulcast, svc, pipe

    init(_ producer: ProducerType) {
        switch producer {
        case .simple: self = .simple
        case .simulcast: self = .simulcast
        case .svc: self = .svc
        }
    }
}
