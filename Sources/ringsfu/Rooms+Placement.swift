import Logging
import RingSFU

/// Where a room's members go across its routers (the home and edges on
/// other workers), and how producers reach the router that consumes them.
extension Rooms {
    /// The room's routers with their workers: home, then edges.
    func routers(of room: Room) -> [(String, Router)] {
        [(room.workerId, room.router)] + room.edges.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Where a new player (or JSON-RPC member) of the room goes: the first
    /// of the room's routers (home, then edges) whose worker is not busy
    /// and has room for members, else a new edge on the least-loaded worker
    /// the room is not on yet; with no such worker, home carries on.
    func memberRouter(_ room: Room) throws(SFUError) -> (String, Router) {
        let routers = routers(of: room)
        for (workerId, router) in routers {
            let members = room.players.reduce(room.rpcMembers[workerId] ?? 0) { $0 + ($1.workerId == workerId ? 1 : 0) }
            let busy = pool.loads[workerId]?.busy(limits.spillLoad) ?? false
            if members < limits.playersPerWorker && !busy { return (workerId, router) }
        }
        guard let worker = pool.leastLoaded(except: Set(routers.map(\.0))),
              !(pool.loads[worker.id]?.busy(limits.spillLoad) ?? false) else { return (room.workerId, room.router) }
        let edge = try worker.createRouter(mediaCodecs: Self.mediaCodecs, appData: ["room": .string(room.name), "edge": .bool(true)])
        room.edges[worker.id] = edge
        logger.debug("room spills onto another worker", metadata: ["room": "\(room.name)", "worker": "\(worker.id)"])
        return (worker.id, edge)
    }

    /// The producer as `router` has it: piped the first time from the
    /// room's router it was produced on (nil: no router of the room has it).
    func pipeIn(_ producerId: String, room: Room, to router: Router) throws(SFUError) -> Producer? {
        if let existing = router.producer(id: producerId), !existing.closed { return existing }
        let all = routers(of: room).map(\.1)
        // Its origin: where a transport other than a pipe produced it (else
        // any router holding a copy).
        let origin = all.first { r in r.publishingTransports.contains { t in !(t is PipeTransport) && t.openProducers.contains { $0.id == producerId } } }
            ?? all.first { $0.producer(id: producerId).map { !$0.closed } ?? false }
        guard let origin, origin !== router else { return nil }
        return try origin.pipeToRouter(producerId: producerId, router: router).pipeProducer
    }

    /// Closes the room's edges that have no player or member left (their
    /// pipes close with them).
    func closeIdleEdges(_ room: Room) {
        for (workerId, edge) in room.edges where !room.players.contains(where: { $0.workerId == workerId }) && (room.rpcMembers[workerId] ?? 0) == 0 {
            room.edges[workerId] = nil
            edge.close()
        }
    }
}
