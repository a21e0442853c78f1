import RingSFU

/// JSON-RPC members of rooms (`room.join`). A member gets the router it is
/// to use: the room's home router, or an edge on another worker once the
/// home has `playersPerWorker` members or is busy (as WHEP players spill),
/// or, when the room is homed on another node of the cluster, this node's
/// mirror of it. Producers of the room's other routers are piped to the
/// member's router when it consumes them; a member of a mirror that
/// produces has its producer piped up to the home node, which lists it
/// for the whole room.
extension Rooms: RpcRoomDirectory {
    func join(room name: String) async throws(SFUError) -> Router {
        guard Self.validName(name) else { throw .invalidArgument("invalid params.room: 1 to 64 of A-Z a-z 0-9 _ - .") }
        // A room whose router closed (its home node left) starts over.
        if let stale = rooms[name], stale.router.closed { forget(stale) }
        if let cluster, rooms[name] == nil, case .node(let home) = await cluster.claim(room: name) {
            do throws(Refusal) {
                try await mirror(room: name, home: home, cluster: cluster, publisher: nil)
            } catch {
                throw Self.sfuError(error)
            }
        }
        let room: Room
        do throws(Refusal) { room = try openRoom(name) } catch { throw Self.sfuError(error) }
        let workerId: String, router: Router
        do { (workerId, router) = try memberRouter(room) } catch {
            closeIfEmpty(room)
            throw error
        }
        room.rpcMembers[workerId, default: 0] += 1
        return router
    }

    private static func sfuError(_ refusal: Refusal) -> SFUError {
        switch refusal {
        case .notFound(let m), .full(let m): .invalidState(m)
        case .rejected(let e): e
        }
    }

    /// The room (as it is now) that `router` serves.
    private func room(_ name: String, serving router: Router) -> Room? {
        guard let room = rooms[name], routers(of: room).contains(where: { $0.1 === router }) else { return nil }
        return room
    }

    func leave(room name: String, router: Router) {
        guard let room = room(name, serving: router),
              let workerId = routers(of: room).first(where: { $0.1 === router })?.0 else { return }
        room.rpcMembers[workerId] = max(0, (room.rpcMembers[workerId] ?? 0) - 1)
        if room.rpcMembers[workerId] == 0 { room.rpcMembers[workerId] = nil }
        closeIdleEdges(room)
        closeIfEmpty(room)
    }

    func publishers(room name: String, router: Router) async -> [(id: String, producers: [Producer])] {
        guard let room = room(name, serving: router) else { return [] }
        // A mirror first asks its home for publishers it does not have yet.
        if let mirror = room.mirror { try? await mirror.refresh() }
        return publishers(of: room).map { ($0.id, $0.producers) }
    }

    func prepareConsume(producerId: String, router: Router) async throws(SFUError) {
        guard let room = rooms.values.first(where: { r in routers(of: r).contains { $0.1 === router } }),
              router.producer(id: producerId) == nil else { return }
        if let mirror = room.mirror, room.router.producer(id: producerId) == nil {
            do { try await mirror.refresh() } catch {
                throw .invalidState("room \(room.name): its home node \(mirror.home.id) did not answer: \(error)")
            }
        }
        _ = try pipeIn(producerId, room: room, to: router)
    }

    func produced(_ producer: Producer, transport: Transport, router: Router) async throws(SFUError) {
        guard let room = rooms.values.first(where: { r in routers(of: r).contains { $0.1 === router } }), let mirror = room.mirror else { return }
        // Up from the mirror's own router (an edge's producer goes there first).
        let local = try pipeIn(producer.id, room: room, to: room.router) ?? producer
        do { try await mirror.pipeUp(local, publisher: transport.id) } catch {
            throw .invalidState("room \(room.name): its home node \(mirror.home.id) did not take the producer: \(error)")
        }
    }
}
