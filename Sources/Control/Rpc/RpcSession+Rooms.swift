/// A server's rooms, reachable from JSON-RPC: a client joins a room by name
/// and gets the room's router to create its transports on, beside the WHIP
/// publishers and WHEP players of the same room.
///
/// A room may span several routers (workers of one host, nodes of a
/// cluster): `join` gives each member the router it is to use, and the
/// directory makes the room's producers available there on demand.
@RingSFUActor
public protocol RpcRoomDirectory: AnyObject {
    /// The router this member is to use (the room opens if needed); the
    /// session counts as a member there until `leave`.
    func join(room: String) async throws(SFUError) -> Router
    /// A session left the room (or ended), having joined on `router`: the
    /// room (or that router of it) may close if nobody is left.
    func leave(room: String, router: Router)
    /// The room's publishers as a member on `router` sees them: an id (a
    /// WHIP session or a member's transport) and its open producers.
    func publishers(room: String, router: Router) async -> [(id: String, producers: [Producer])]
    /// Called before a member on `router` consumes `producerId`: brings
    /// the producer of another router of the room there (a pipe).
    func prepareConsume(producerId: String, router: Router) async throws(SFUError)
    /// Called after a member produced on `transport` of `router`: makes
    /// the producer known to the rest of the room (in a cluster, its home
    /// node). A throw closes the producer and fails the request.
    func produced(_ producer: Producer, transport: Transport, router: Router) async throws(SFUError)
}

extension RpcRoomDirectory {
    /// One router per room: its publishing transports.
    public func publishers(room: String, router: Router) async -> [(id: String, producers: [Producer])] {
        router.publishingTransports.map { ($0.id, $0.openProducers) }
    }
    public func prepareConsume(producerId: String, router: Router) async throws(SFUError) {}
    public func produced(_ producer: Producer, transport: Transport, router: Router) async throws(SFUError) {}
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
            if let router = joinedRooms[name] {
                if !router.closed { return await roomJSON(name, router) }
                // The room closed under the member (its home node left): a
                // new join opens it again.
                joinedRooms[name] = nil
                rooms.leave(room: name, router: router)
            }
            let router = try await rooms.join(room: name)
            joinedRooms[name] = router
            return await roomJSON(name, router)
        case "room.getPublishers":
            guard let router = joinedRooms[name], !router.closed else { throw SFUError.invalidState("not in room \(name) (call room.join)") }
            return await roomJSON(name, router)
        case "room.leave":
            guard let router = joinedRooms.removeValue(forKey: name) else { throw SFUError.invalidState("not in room \(name)") }
            for t in ownedTransports where !t.closed && t.router === router { t.close() }
            rooms.leave(room: name, router: router)
            return Self.ok
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    func roomJSON(_ name: String, _ router: Router) async -> JSONValue {
        let publishers = await rooms?.publishers(room: name, router: router) ?? []
        return .object([
            "routerId": .string(router.id),
            "rtpCapabilities": .encoding(router.rtpCapabilities),
            "publishers": .array(publishers.map { p in
                .object(["id": .string(p.id), "producers": .array(p.producers.map { .object(["id": .string($0.id), "kind": .string($0.kind.rawValue)]) })])
            }),
        ])
    }

    /// The room a joined router serves, if `router` is one.
    func joinedRoom(of router: Router?) -> String? {
        guard let router else { return nil }
        return joinedRooms.first { $0.value === router }?.key
    }

    /// Leaves every joined room (the session ended).
    func leaveRooms() {
        for (name, router) in joinedRooms { rooms?.leave(room: name, router: router) }
        joinedRooms.removeAll()
    }
}
