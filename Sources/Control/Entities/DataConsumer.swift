import Foundation

public enum DataConsumerEvent: Sendable {
    case transportClose
    case dataProducerClose
    case dataProducerPause
    case dataProducerResume
    /// A message for the application (DirectTransport data consumers).
    case message([UInt8], ppid: UInt32)
    /// SCTP data consumers: the association's buffered bytes fell to the
    /// threshold set with `setBufferedAmountLowThreshold` (with the amount).
    case bufferedAmountLow(Int)
    /// SCTP data consumers: a message was dropped, the send buffer being full.
    case sctpSendBufferFull
}

public enum DataConsumerObserverEvent: Sendable {
    case close, pause, resume
}

/// A data producer's messages delivered to one endpoint.
@RingSFUActor
public final class DataConsumer {
    public nonisolated let id: String
    public nonisolated let dataProducerId: String
    public nonisolated let type: String
    public nonisolated let sctpStreamParameters: SctpStreamParameters?
    public nonisolated let label: String
    public nonisolated let `protocol`: String
    public private(set) var paused: Bool
    public private(set) var dataProducerPaused: Bool
    public private(set) var closed = false
    public var appData: AppData

    weak var transport: Transport?
    weak var dataProducer: DataProducer?
    weak var worker: Worker?
    /// For a pipe data consumer made by pipeToRouter: the data producer it feeds.
    weak var pipeDataProducer: DataProducer?
    var messagesSent: UInt64 = 0
    /// SCTP: the association's buffered amount as last reported, the
    /// threshold for `bufferedAmountLow`, and whether to report the next
    /// change even without a crossing (the threshold was set below it).
    public private(set) var bufferedAmount = 0
    public private(set) var bufferedAmountLowThreshold = 0
    private var forceBufferedAmountLow = false
    var bytesSent: UInt64 = 0
    private let eventChannel = EventChannel<DataConsumerEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: DataConsumerEvent) {
        eventChannel.emit(event)
        worker?.published(.dataConsumer(id, event))
    }
    private let observerChannel = EventChannel<DataConsumerObserverEvent>()

    init(transport: Transport, dataProducer: DataProducer, type: String, sctpStreamParameters: SctpStreamParameters?, paused: Bool, appData: AppData) {
        id = UUID().uuidString.lowercased()
        dataProducerId = dataProducer.id
        self.transport = transport
        self.dataProducer = dataProducer
        self.worker = transport.worker
        self.type = type
        self.sctpStreamParameters = sctpStreamParameters
        label = dataProducer.label
        self.protocol = dataProducer.protocol
        self.paused = paused
        dataProducerPaused = dataProducer.paused
        self.appData = appData
    }

    public var events: AsyncStream<DataConsumerEvent> { eventChannel.subscribe() }
    public var observer: AsyncStream<DataConsumerObserverEvent> { observerChannel.subscribe() }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("DataConsumer closed") }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        detach()
        observerChannel.emit(.close)
        finishChannels()
    }

    func transportClosed() {
        guard !closed else { return }
        closed = true
        dataProducer?.dataConsumerRemoved(self)
        worker?.registry.remove(self)
        publish(.transportClose)
        observerChannel.emit(.close)
        finishChannels()
    }

    func dataProducerClosed() {
        guard !closed else { return }
        closed = true
        detach()
        publish(.dataProducerClose)
        observerChannel.emit(.close)
        finishChannels()
    }

    private func detach() {
        // The endpoint's data channel on our stream closes with it.
        if let stream = sctpStreamParameters?.streamId { transport?.sctp?.resetStream(stream) }
        transport?.dataConsumerRemoved(self)
        dataProducer?.dataConsumerRemoved(self)
    }

    private func finishChannels() {
        eventChannel.finish()
        observerChannel.finish()
        // The far end of a pipe goes with it.
        if let pipeDataProducer, !pipeDataProducer.closed { pipeDataProducer.close() }
    }

    func dataProducerPausedChanged(_ value: Bool) {
        guard !closed, dataProducerPaused != value else { return }
        dataProducerPaused = value
        if let pipeDataProducer, !pipeDataProducer.closed {
            if value { try? pipeDataProducer.pause() } else { try? pipeDataProducer.resume() }
        }
        publish(value ? .dataProducerPause : .dataProducerResume)
        if !paused { observerChannel.emit(value ? .pause : .resume) }
    }

    public func pause() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = true
        if !was && !dataProducerPaused { observerChannel.emit(.pause) }
    }

    public func resume() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = false
        if was && !dataProducerPaused { observerChannel.emit(.resume) }
    }

    func deliver(_ message: [UInt8], ppid: UInt32) {
        guard !closed, !paused, !dataProducerPaused else { return }
        if let pipeDataProducer {
            pipeDataProducer.received(message, ppid: ppid)
        } else if let p = sctpStreamParameters {
            // Over SCTP to the endpoint: counted once queued.
            guard let sctp = transport?.sctp else { return }
            switch sctp.send(streamId: p.streamId, ppid: ppid, ordered: p.ordered ?? true, maxRetransmits: p.maxRetransmits,
                             maxPacketLifeTime: p.maxPacketLifeTime, message) {
            case .sent:
                break
            case .bufferFull:
                publish(.sctpSendBufferFull)
                return
            case .failed:
                // Not connected yet, or larger than the whole send buffer.
                worker?.logger.debug("SCTP message not sent", metadata: ["dataConsumer": .string(id), "bytes": .stringConvertible(message.count)])
                return
            }
        } else {
            publish(.message(message, ppid: ppid))
        }
        messagesSent += 1
        bytesSent += UInt64(message.count)
    }

    /// The SCTP association's buffered bytes (shared by its data consumers).
    public func getBufferedAmount() throws(SFUError) -> Int {
        try checkOpen()
        guard sctpStreamParameters != nil else { throw .invalidState("invalid DataConsumer type \(type) (not sctp)") }
        return transport?.sctp?.bufferedAmount ?? 0
    }

    /// `bufferedAmountLow` fires when the buffered amount falls to this
    /// many bytes or below: at once if it already is, else on the next
    /// change that brings it there (mediasoup's semantics).
    public func setBufferedAmountLowThreshold(_ threshold: Int) throws(SFUError) {
        try checkOpen()
        guard sctpStreamParameters != nil else { throw .invalidState("invalid DataConsumer type \(type) (not sctp)") }
        guard threshold >= 0 else { throw .invalidArgument("threshold must be a positive number") }
        bufferedAmountLowThreshold = threshold
        bufferedAmount = transport?.sctp?.bufferedAmount ?? bufferedAmount
        if bufferedAmount <= threshold {
            forceBufferedAmountLow = false
            emitBufferedAmountLow()
        } else {
            forceBufferedAmountLow = true
        }
    }

    func sctpBufferedAmountChanged(_ amount: Int) {
        guard !closed, sctpStreamParameters != nil else { return }
        let previous = bufferedAmount
        bufferedAmount = amount
        if (forceBufferedAmountLow || previous > bufferedAmountLowThreshold) && amount <= bufferedAmountLowThreshold {
            forceBufferedAmountLow = false
            emitBufferedAmountLow()
        }
    }

    private func emitBufferedAmountLow() {
        publish(.bufferedAmountLow(bufferedAmount))
    }

    /// mediasoup's "data-consumer" stats entry.
    public func getStats() throws(SFUError) -> [DataStats] {
        try checkOpen()
        var s = DataStats(type: "data-consumer", timestamp: nowMillis(), label: label, protocol: `protocol`, messagesSent: messagesSent, bytesSent: bytesSent)
        if sctpStreamParameters != nil { s.bufferedAmount = transport?.sctp?.bufferedAmount ?? 0 }
        return [s]
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var dataProducerId: String
        public var type: String
        public var label: String
        public var `protocol`: String
        public var paused: Bool
        public var dataProducerPaused: Bool
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, dataProducerId: dataProducerId, type: type, label: label, protocol: `protocol`, paused: paused, dataProducerPaused: dataProducerPaused)
    }
}
