/// A server's rooms, reachable from JSON-RPC: a client joins a room by name
/// and gets the room's router to create its transports on, beside the WHIP
/// publishers and WHEP players of the same room.
@RingSFUActor
public protocol RpcRoomDirectory: AnyObject {
    /// The room's router (the room opens if needed); the session counts as
    /// a member until `leave`.
    func join(room: String) throws(SFUError) -> Router
    /// A session left the room (or ended): the room may close if empty.
    func leave(room: String)
}

extension Router {
    /// Transports with at least one open producer, oldest first: the
    /// room's publishers.
    public var publishingTransports: [Transport] {
        transports.values.filter { !$0.closed && $0.producers.values.contains { !$0.closed } }
    }
}

extension Transport {
    /// The transport's open producers, oldest first.
    public var openProducers: [Producer] { producers.values.filter { !$0.closed } }
}

extension RpcSession {
    /// Gives the session the server's rooms (nil: `room.*` is unsupported).
    public func setRooms(_ rooms: (any RpcRoomDirectory)?) { self.rooms = rooms }

    /// Announced addresses of particular workers (by worker id).
    public func setWorkerAnnouncedAddresses(_ addresses: [String: String]) { workerAnnouncedAddresses = addresses }

    /// `room.join {room}` -> the router id, its capabilities and the room's
    /// publishers (transports with producers: `{id, producers: [{id, kind}]}`);
    /// `room.getPublishers {room}`; `room.leave {room}` closes the session's
    /// transports in the room. The room's router may be used to create
    /// transports and to consume any producer in it, not to close it.
    func roomMethod(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        guard let rooms else { throw SFUError.unsupported("this server has no rooms") }
        let name = try string(p, "room")
        switch method {
        case "room.join":
            if let router = joinedRooms[name], !router.closed { return roomJSON(router) }
            let router = try rooms.join(room: name)
            joinedRooms[name] = router
            return roomJSON(router)
        case "room.getPublishers":
            guard let router = joinedRooms[name], !router.closed else { throw SFUError.invalidState("not in room \(name) (call room.join)") }
            return roomJSON(router)
        case "room.leave":
            guard let router = joinedRooms.removeValue(forKey: name) else { throw SFUError.invalidState("not in room \(name)") }
            for t in ownedTransports where !t.closed && t.router === router { t.close() }
            rooms.leave(room: name)
            return Self.ok
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    func roomJSON(_ router: Router) -> JSONValue {
        .object([
            "routerId": .string(router.id),
            "rtpCapabilities": .encoding(router.rtpCapabilities),
            "publishers": .array(router.publishingTransports.map { t in
                .object(["id": .string(t.id), "producers": .array(t.openProducers.map { .object(["id": .string($0.id), "kind": .string($0.kind.rawValue)]) })])
            }),
        ])
    }

    /// Leaves every joined room (the session ended).
    func leaveRooms() {
        for name in joinedRooms.keys { rooms?.leave(room: name) }
        joinedRooms.removeAll()
    }
}
