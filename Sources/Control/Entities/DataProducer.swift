import Foundation

/// SCTP stream parameters of a data producer or consumer (mediasoup's names).
public struct SctpStreamParameters: Codable, Sendable, Hashable {
    public var streamId: Int
    public var ordered: Bool?
    public var maxPacketLifeTime: Int?
    public var maxRetransmits: Int?

    public init(streamId: Int, ordered: Bool? = nil, maxPacketLifeTime: Int? = nil, maxRetransmits: Int? = nil) {
        self.streamId = streamId
        self.ordered = ordered
        self.maxPacketLifeTime = maxPacketLifeTime
        self.maxRetransmits = maxRetransmits
    }

    /// mediasoup's rules: a stream is either reliable and ordered, or
    /// partially reliable (one of the two limits) and then unordered.
    func validated() throws(SFUError) -> SctpStreamParameters {
        guard (0...65534).contains(streamId) else { throw .invalidArgument("invalid sctpStreamParameters.streamId \(streamId)") }
        if let m = maxRetransmits, !(0...65535).contains(m) { throw .invalidArgument("invalid sctpStreamParameters.maxRetransmits \(m)") }
        if let m = maxPacketLifeTime, !(0...Int(Int32.max)).contains(m) { throw .invalidArgument("invalid sctpStreamParameters.maxPacketLifeTime \(m)") }
        if maxPacketLifeTime != nil && maxRetransmits != nil {
            throw .invalidArgument("cannot provide both maxPacketLifeTime and maxRetransmits")
        }
        var p = self
        let partial = maxPacketLifeTime != nil || maxRetransmits != nil
        if let ordered {
            if ordered && partial { throw .invalidArgument("cannot be ordered with maxPacketLifeTime or maxRetransmits") }
        } else {
            p.ordered = !partial
        }
        return p
    }
}

/// A data producer's or consumer's figures, in mediasoup's shape.
public struct DataStats: Codable, Sendable, Hashable {
    public var type: String
    public var timestamp: Double
    public var label: String
    public var `protocol`: String
    public var messagesReceived: UInt64?
    public var bytesReceived: UInt64?
    public var messagesSent: UInt64?
    public var bytesSent: UInt64?
    /// Data consumers over SCTP: bytes queued in the association.
    public var bufferedAmount: Int? = nil
}

/// Options of `transport.produceData`.
public struct DataProducerOptions: Codable, Sendable {
    public var id: String?
    public var sctpStreamParameters: SctpStreamParameters?
    public var label: String?
    public var `protocol`: String?
    public var paused: Bool?
    public var appData: AppData?

    public init(id: String? = nil, sctpStreamParameters: SctpStreamParameters? = nil, label: String? = "", protocol: String? = "", paused: Bool? = false, appData: AppData? = nil) {
        self.id = id
        self.sctpStreamParameters = sctpStreamParameters
        self.label = label
        self.protocol = `protocol`
        self.paused = paused
        self.appData = appData
    }
}

/// Options of `transport.consumeData`.
public struct DataConsumerOptions: Codable, Sendable {
    public var dataProducerId: String
    public var ordered: Bool?
    public var maxPacketLifeTime: Int?
    public var maxRetransmits: Int?
    public var paused: Bool?
    public var appData: AppData?

    public init(dataProducerId: String, paused: Bool? = false, appData: AppData? = nil) {
        self.dataProducerId = dataProducerId
        self.paused = paused
        self.appData = appData
    }
}

/// SCTP payload protocol identifiers of WebRTC data channels (RFC 8831).
public enum DataPpid {
    public static let string: UInt32 = 51
    public static let binary: UInt32 = 53
    public static let emptyString: UInt32 = 56
    public static let emptyBinary: UInt32 = 57
}

public enum DataProducerEvent: Sendable {
    case transportClose
}

public enum DataProducerObserverEvent: Sendable {
    case close, pause, resume
}

/// A source of data messages: over SCTP (WebRTC data channels) or, on a
/// DirectTransport, sent by the application with `send`.
@RingSFUActor
public final class DataProducer {
    public nonisolated let id: String
    /// `sctp` or `direct`.
    public nonisolated let type: String
    public nonisolated let sctpStreamParameters: SctpStreamParameters?
    public nonisolated let label: String
    public nonisolated let `protocol`: String
    public private(set) var paused: Bool
    public private(set) var closed = false
    public var appData: AppData

    weak var transport: Transport?
    weak var worker: Worker?
    var dataConsumers = OrderedMap<DataConsumer>()
    /// For a pipe data producer made by pipeToRouter: the consumer feeding it.
    weak var pipeDataConsumer: DataConsumer?
    var messagesReceived: UInt64 = 0
    var bytesReceived: UInt64 = 0
    private let eventChannel = EventChannel<DataProducerEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: DataProducerEvent) {
        eventChannel.emit(event)
        worker?.published(.dataProducer(id, event))
    }
    private let observerChannel = EventChannel<DataProducerObserverEvent>()

    init(transport: Transport, id: String?, type: String, sctpStreamParameters: SctpStreamParameters?, label: String, protocol: String, paused: Bool, appData: AppData) {
        self.id = id ?? UUID().uuidString.lowercased()
        self.transport = transport
        self.worker = transport.worker
        self.type = type
        self.sctpStreamParameters = sctpStreamParameters
        self.label = label
        self.protocol = `protocol`
        self.paused = paused
        self.appData = appData
    }

    public var events: AsyncStream<DataProducerEvent> { eventChannel.subscribe() }
    public var observer: AsyncStream<DataProducerObserverEvent> { observerChannel.subscribe() }
    public var dataConsumerCount: Int { dataConsumers.count }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("DataProducer closed") }
    }

    /// Closes it; its data consumers then emit `dataProducerClose`.
    public func close() {
        guard !closed else { return }
        closed = true
        // The endpoint's data channel on this stream closes with it.
        if let stream = sctpStreamParameters?.streamId { transport?.sctp?.resetStream(stream) }
        transport?.dataProducerRemoved(self)
        observerChannel.emit(.close)
        finishChannels()
        let orphans = dataConsumers.values
        dataConsumers.removeAll()
        for c in orphans { c.dataProducerClosed() }
    }

    func transportClosed() {
        guard !closed else { return }
        closed = true
        worker?.registry.remove(self)
        publish(.transportClose)
        observerChannel.emit(.close)
        finishChannels()
    }

    private func finishChannels() {
        eventChannel.finish()
        observerChannel.finish()
        if let pipeDataConsumer, !pipeDataConsumer.closed { pipeDataConsumer.close() }
    }

    public func pause() throws(SFUError) {
        try checkOpen()
        guard !paused else { return }
        paused = true
        observerChannel.emit(.pause)
        for c in dataConsumers.values { c.dataProducerPausedChanged(true) }
    }

    public func resume() throws(SFUError) {
        try checkOpen()
        guard paused else { return }
        paused = false
        observerChannel.emit(.resume)
        for c in dataConsumers.values { c.dataProducerPausedChanged(false) }
    }

    /// Sends a message from the application (DirectTransport data producers).
    /// `ppid` defaults to binary (53), or to empty-binary (57) for an empty message.
    public func send(_ message: [UInt8], ppid: UInt32? = nil) throws(SFUError) {
        try checkOpen()
        guard let direct = transport as? DirectTransport else { throw .invalidState("send() is only for data producers of a DirectTransport") }
        guard message.count <= direct.maxMessageSize else {
            throw .invalidArgument("message of \(message.count) bytes exceeds maxMessageSize \(direct.maxMessageSize)")
        }
        let id = ppid ?? (message.isEmpty ? DataPpid.emptyBinary : DataPpid.binary)
        guard [DataPpid.string, DataPpid.binary, DataPpid.emptyString, DataPpid.emptyBinary].contains(id) else {
            throw .invalidArgument("invalid ppid \(id)")
        }
        received(message, ppid: id)
    }

    /// A message from the endpoint (or the application): counted, then
    /// given to every data consumer unless paused.
    func received(_ message: [UInt8], ppid: UInt32) {
        guard !closed else { return }
        // WebRTC sends an empty message as one byte with an "empty" PPID.
        let body = ppid == DataPpid.emptyString || ppid == DataPpid.emptyBinary ? [] : message
        messagesReceived += 1
        bytesReceived += UInt64(body.count)
        guard !paused else { return }
        for c in dataConsumers.values { c.deliver(body, ppid: ppid) }
    }

    /// Sends a text message (ppid 51, or 56 when empty).
    public func send(text: String) throws(SFUError) {
        try send(Array(text.utf8), ppid: text.isEmpty ? DataPpid.emptyString : DataPpid.string)
    }

    func dataConsumerRemoved(_ c: DataConsumer) { dataConsumers[c.id] = nil }

    /// mediasoup's "data-producer" stats entry.
    public func getStats() throws(SFUError) -> [DataStats] {
        try checkOpen()
        return [DataStats(type: "data-producer", timestamp: nowMillis(), label: label, protocol: `protocol`, messagesReceived: messagesReceived, bytesReceived: bytesReceived)]
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var type: String
        public var label: String
        public var `protocol`: String
        public var paused: Bool
        public var sctpStreamParameters: SctpStreamParameters?
        public var dataConsumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, type: type, label: label, protocol: `protocol`, paused: paused, sctpStreamParameters: sctpStreamParameters, dataConsumerIds: dataConsumers.keys)
    }
}
