import RingSFU

/// Rooms across the nodes of a cluster: a room lives on its home node
/// (where its publishers are); a player reaching another node plays a
/// mirror of it there, fed by one pipe per room and node (see `Uplink`).
extension Rooms {
    /// Rooms this node is home of (claimed in Redis with each heartbeat).
    var homedRooms: [RoomInfo] { rooms.values.filter { $0.mirror == nil }.map { describe($0.name) } }

    /// Whether the room is open here and not as a mirror.
    func isHome(of name: String) -> Bool { rooms[name].map { $0.mirror == nil } ?? false }

    var playerCount: Int { rooms.values.reduce(0) { $0 + $1.players.count } }

    /// Makes sure this node mirrors the room homed on `home`, with the
    /// given publisher if it names one the mirror lacks.
    func mirror(room name: String, home: NodeRecord, cluster: ClusterNode, publisher: String?) async throws(Refusal) {
        if let pending = mirroring[name] { try await pending.value.get() }
        if let room = rooms[name] {
            guard let m = room.mirror, let publisher, !m.publishers.contains(where: { $0.id == publisher }) else { return }
            try? await m.refresh()
            return
        }
        let task = Task { @RingSFUActor [self] in await self.openMirror(name, home: home, cluster: cluster) }
        mirroring[name] = task
        let result = await task.value
        mirroring[name] = nil
        try result.get()
    }

    private func openMirror(_ name: String, home: NodeRecord, cluster: ClusterNode) async -> Result<Void, Refusal> {
        guard rooms.count < limits.maxRooms else { return .failure(.full("the server has its maximum of \(limits.maxRooms) rooms")) }
        guard let worker = pool.leastLoaded() else { return .failure(.full("no worker is running")) }
        let router: Router
        do { router = try worker.createRouter(mediaCodecs: Self.mediaCodecs, appData: ["room": .string(name), "home": .string(home.id)]) } catch {
            return .failure(.full(error.message))
        }
        let uplink = Uplink(room: name, home: home, router: router)
        do { try await uplink.start(pipeIp: cluster.settings.pipeIp, token: cluster.settings.token) } catch {
            uplink.close()
            return .failure(.full("room \(name) is homed on node \(home.id), which this node cannot reach: \(error)"))
        }
        let room = Room(name: name, router: router, workerId: worker.id)
        room.mirror = uplink
        uplink.onPublisherGone = { [weak self, weak room] id in
            guard let self, let room else { return }
            for p in room.players where p.publisherId == id { self.end(p.id, reason: "publisher left") }
        }
        uplink.onEnd = { [weak self, weak room] reason in
            guard let self, let room else { return }
            for p in room.players { self.end(p.id, reason: reason) }
            // JSON-RPC members see their transports close with the router.
            self.forget(room)
        }
        rooms[name] = room
        return .success(())
    }
}
