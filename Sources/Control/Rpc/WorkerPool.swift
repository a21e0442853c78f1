import RingSFUCShims

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

    /// Each worker's load as last sampled (`sampleLoads`), by worker id.
    public internal(set) var loads: [String: WorkerLoad] = [:]

    /// Samples every worker's figures into its `WorkerLoad`; call it on a
    /// schedule (the server does, every second).
    public func sampleLoads(nowNs: Int64 = rsfu_monotonic_ns()) async {
        for w in workers where !w.closed {
            let (packets, cpu) = await w.loadFigures()
            loads[w.id, default: WorkerLoad()].sample(nowNs: nowNs, packetsOut: packets, cpuSeconds: cpu)
        }
    }

    public func load(of worker: Worker) -> WorkerLoad { loads[worker.id] ?? WorkerLoad() }

    /// The open worker doing the least: by sampled load (CPU share and
    /// packet rate, in steps of 5 % of a core so that noise does not decide),
    /// then by entity count (routers, WebRTC servers, transports, producers,
    /// consumers: where the load is about to be). `except`: workers not to
    /// pick (a room's spill goes to another worker).
    public func leastLoaded(except: Set<String> = []) -> Worker? {
        func key(_ w: Worker) -> (Int, Int) { (Int(load(of: w).score * 20), w.entityCount) }
        return workers.filter { !$0.closed && !except.contains($0.id) }.min { key($0) < key($1) }
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
