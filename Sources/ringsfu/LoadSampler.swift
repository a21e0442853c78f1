import RingSFU
import ServiceLifecycle

/// Samples every worker's load each second (`WorkerPool.sampleLoads`): what
/// room placement and spilling decide on.
struct LoadSampler: Service {
    let pool: WorkerPool
    var interval: Duration = .seconds(1)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await pool.sampleLoads()
                try? await Task.sleep(for: interval)
            }
        }
    }
}
