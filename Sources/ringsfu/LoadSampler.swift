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

/// Registers the node in the cluster every second and refreshes the claims
/// of the rooms homed here (`ClusterNode.heartbeat`).
struct ClusterHeartbeat: Service {
    let cluster: ClusterNode
    let rooms: Rooms
    var interval: Duration = .seconds(1)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let (homed, players) = await (rooms.homedRooms, rooms.playerCount)
                await cluster.heartbeat(rooms: homed, players: players)
                try? await Task.sleep(for: interval)
            }
        }
    }
}
