import Foundation
import RingSFUForwarder

public enum RtpObserverObserverEvent: Sendable {
    case close, pause, resume
    case addProducer(Producer)
    case removeProducer(Producer)
}

/// The common part of RTP observers: the producers they watch, pause and
/// resume, and closure with the router.
@RingSFUActor
public class RtpObserver {
    public nonisolated let id: String
    public internal(set) var closed = false
    public private(set) var paused = false
    public var appData: AppData

    weak var router: Router?
    weak var worker: Worker?
    let forwarder: ForwarderWorker
    let handle: Handle
    var producers = OrderedMap<Producer>()
    let observerChannel = EventChannel<RtpObserverObserverEvent>()

    init(router: Router, worker: Worker, handle: Handle, appData: AppData) {
        id = UUID().uuidString.lowercased()
        self.router = router
        self.worker = worker
        self.forwarder = worker.forwarder
        self.handle = handle
        self.appData = appData
    }

    public var observer: AsyncStream<RtpObserverObserverEvent> { observerChannel.subscribe() }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("RtpObserver closed") }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        forwarder.send(.closeObserver(handle))
        teardown()
        observerChannel.emit(.close)
        finishChannels()
    }

    /// The router closed: emits `routerClose`.
    func routerClosed() {
        guard !closed else { return }
        closed = true
        teardown()
        emitRouterClose()
        observerChannel.emit(.close)
        finishChannels()
    }

    private func teardown() {
        for p in producers.values { p.observers[id] = nil }
        producers.removeAll()
        router?.observerClosed(self)
        forwarder.observerHandles.release(handle)
    }

    func emitRouterClose() {}
    func finishChannels() { observerChannel.finish() }

    public func pause() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = true
        forwarder.send(.setObserverPaused(handle, true))
        if !was { observerChannel.emit(.pause) }
    }

    public func resume() throws(SFUError) {
        try checkOpen()
        let was = paused
        paused = false
        forwarder.send(.setObserverPaused(handle, false))
        if was { observerChannel.emit(.resume) }
    }

    /// Starts watching a producer of the same router.
    public func addProducer(producerId: String) throws(SFUError) {
        try checkOpen()
        guard let producer = router?.producers[producerId] else { throw .failure("Producer with id \"\(producerId)\" not found") }
        guard producers[producerId] == nil else { return }
        guard producers.count < 32 else { throw .unsupported("an observer watches at most 32 producers") }
        guard producer.observers.count < 4 else { throw .unsupported("a producer can be in at most 4 observers") }
        producers[producerId] = producer
        producer.observers[id] = self
        forwarder.send(.observerAddProducer(observer: handle, producer: producer.handle))
        observerChannel.emit(.addProducer(producer))
    }

    public func removeProducer(producerId: String) throws(SFUError) {
        try checkOpen()
        guard let producer = producers[producerId] else { throw .failure("Producer with id \"\(producerId)\" not found") }
        producers[producerId] = nil
        producer.observers[id] = nil
        forwarder.send(.observerRemoveProducer(observer: handle, producer: producer.handle))
        observerChannel.emit(.removeProducer(producer))
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var paused: Bool
        public var producerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, paused: paused, producerIds: producers.keys)
    }

    /// A watched producer closed; the forwarder already dropped it.
    func producerClosed(_ producer: Producer) {
        producers[producer.id] = nil
    }

    /// The forwarder's audio level sums for one interval.
    func intervalEnded(_ samples: [AudioLevelSample]) {}
}
