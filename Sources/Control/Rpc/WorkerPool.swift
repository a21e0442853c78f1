/// A set of workers, typically one per core, that routers are spread over.
@RingSFUActor
public final class WorkerPool {
    public private(set) var workers: [Worker] = []

    public init() {}

    /// Starts `count` workers. With `pin`, worker i is pinned to CPU i.
    public func start(count: Int, settings: WorkerSettings = WorkerSettings(), pin: Bool = false) async throws(SFUError) {
        guard count >= 1 else { throw .invalidArgument("worker count must be at least 1") }
        for i in 0..<count {
            var s = settings
            if pin { s.cpu = i }
            workers.append(try await Worker.create(s))
        }
    }

    public func add(_ worker: Worker) { workers.append(worker) }

    public func worker(id: String) -> Worker? { workers.first { $0.id == id } }

    /// The open worker with the fewest entities (routers, WebRTC servers,
    /// transports, producers and consumers), which is where the load is.
    public func leastLoaded() -> Worker? {
        workers.filter { !$0.closed }.min { $0.entityCount < $1.entityCount }
    }

    public func closeAll() {
        for w in workers { w.close() }
    }

    // Lookups across workers, for the JSON-RPC layer.
    func router(id: String) -> Router? {
        for w in workers { if let r = w.routers[id] { return r } }
        return nil
    }
    func transport(id: String) -> Transport? {
        for w in workers { if let t = w.registry.transportsById[id] { return t } }
        return nil
    }
    /// A pipe copy (pipeToRouter) shares its original's id: the original
    /// is the one found, the copy only if there is no original.
    func producer(id: String) -> Producer? {
        let found = workers.compactMap { $0.registry.producersById[id] }
        return found.first { $0.pipeConsumer == nil } ?? found.first
    }
    func dataProducer(id: String) -> DataProducer? {
        let found = workers.compactMap { $0.registry.dataProducersById[id] }
        return found.first { $0.pipeDataConsumer == nil } ?? found.first
    }
    func dataConsumer(id: String) -> DataConsumer? {
        for w in workers { if let x = w.registry.dataConsumersById[id] { return x } }
        return nil
    }
    func rtpObserver(id: String) -> RtpObserver? {
        for w in workers { if let o = w.registry.rtpObserversById[id] { return o } }
        return nil
    }
    func consumer(id: String) -> Consumer? {
        for w in workers { if let c = w.registry.consumersById[id] { return c } }
        return nil
    }
}
