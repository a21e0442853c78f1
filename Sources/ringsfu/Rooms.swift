import Logging
import RingSFU

/// The server's rooms: a room is a router on the least-loaded worker,
/// created by its first session and closed with its last. Publishers
/// (WHIP) each own a WebRtcTransport with their producers; a player (WHEP)
/// owns a transport consuming one publisher's tracks. One WHEP session
/// plays one publisher: a page that shows a whole room opens one per
/// publisher, following `GET /rooms/{room}` (see doc/whip-whep.md).
///
/// A room bigger than its worker spills: once the home worker is busy
/// (its sampled load, `spillLoad`) or carries `playersPerWorker` players of
/// the room, new players go to an edge router of the room on the
/// least-loaded other worker, fed through in-process pipes
/// (`pipeToRouter`); an edge closes with its last player.
@RingSFUActor
final class Rooms {
    struct Limits: Sendable {
        var maxRooms = 1000
        var maxPublishersPerRoom = 25
        var maxPlayersPerRoom = 500
        /// A session whose ICE and DTLS are not up by then is ended.
        var connectTimeout: Duration = .seconds(20)
        /// Where transports listen and what they announce.
        var listenIp = "127.0.0.1"
        var announcedAddress: String? = nil
        /// By worker id, before `announcedAddress`.
        var workerAnnouncedAddresses: [String: String] = [:]
        /// Players (and JSON-RPC members) of a room on one worker before the
        /// room spills onto another, and the worker load
        /// (`WorkerLoad.score`) that spills too.
        var playersPerWorker = 200
        var spillLoad = 0.75
    }

    enum Role: String, Sendable { case publish, play }

    /// Why a session was refused, with the HTTP status it maps to.
    enum Refusal: Error, Sendable {
        /// 404: no such room, publisher or session.
        case notFound(String)
        /// 503: a limit is reached.
        case full(String)
        /// 400/422: the offer cannot be used.
        case rejected(SFUError)
    }

    /// A created session as the HTTP layer needs it.
    struct Created: Sendable {
        var id: String
        var answer: String
        var etag: String
    }

    @RingSFUActor
    final class Session {
        let id: String
        let role: Role
        let room: Room
        /// The worker of the router its transport is on (the room's home or an edge).
        let workerId: String
        let transport: WebRtcTransport
        /// The publisher session a player plays.
        let publisherId: String?
        var producers: [Producer] = []
        var consumers: [Consumer] = []
        /// The remote's ICE username fragment: a PATCH with another one is an ICE restart.
        var remoteUfrag: String?
        /// Changes with our ICE credentials (RFC 9725's entity tag).
        var etag: String { "\"\(transport.iceParameters.usernameFragment)\"" }

        init(id: String, role: Role, room: Room, workerId: String, transport: WebRtcTransport, publisherId: String?) {
            self.id = id
            self.role = role
            self.room = room
            self.workerId = workerId
            self.transport = transport
            self.publisherId = publisherId
        }
    }

    @RingSFUActor
    final class Room {
        let name: String
        let router: Router
        let workerId: String
        /// In order of arrival.
        var publishers: [Session] = []
        var players: [Session] = []
        /// JSON-RPC sessions in the room (`room.join`), by the worker of
        /// the router they were given.
        var rpcMembers: [String: Int] = [:]
        var rpcMemberCount: Int { rpcMembers.values.reduce(0, +) }
        /// Routers of the room on other workers, by worker id: players
        /// spill there, fed by pipes from `router`.
        var edges: [String: Router] = [:]
        /// A room homed on another node of the cluster, mirrored here for
        /// this node's players (its publishers are the home node's).
        var mirror: Uplink?
        init(name: String, router: Router, workerId: String) {
            self.name = name
            self.router = router
            self.workerId = workerId
        }
    }

    /// What rooms offer: opus, and the video codecs browsers and OBS send.
    static let mediaCodecs: [RtpCodecCapability] = [
        RtpCodecCapability(kind: .audio, mimeType: "audio/opus", clockRate: 48000, channels: 2),
        RtpCodecCapability(kind: .video, mimeType: "video/VP8", clockRate: 90000),
        RtpCodecCapability(kind: .video, mimeType: "video/VP9", clockRate: 90000, parameters: ["profile-id": 0]),
        RtpCodecCapability(kind: .video, mimeType: "video/H264", clockRate: 90000,
                           parameters: ["packetization-mode": 1, "profile-level-id": "42e01f", "level-asymmetry-allowed": 1]),
        RtpCodecCapability(kind: .video, mimeType: "video/AV1", clockRate: 90000),
    ]

    let pool: WorkerPool
    let limits: Limits
    /// The cluster this node is in, if any (JSON-RPC members of rooms homed
    /// elsewhere join a mirror).
    let cluster: ClusterNode?
    var rooms: [String: Room] = [:]
    /// Mirrors being set up, by room: a second player waits for the first's.
    var mirroring: [String: Task<Result<Void, Refusal>, Never>] = [:]
    private var sessions: [String: Session] = [:]
    let logger = Logger(label: "ringsfu.rooms")

    nonisolated init(pool: WorkerPool, limits: Limits, cluster: ClusterNode? = nil) {
        self.pool = pool
        self.limits = limits
        self.cluster = cluster
    }

    /// Room names go into URLs and logs: 1-64 of `A-Z a-z 0-9 _ - .`.
    nonisolated static func validName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
    }

    func session(_ id: String, room: String, role: Role) -> Session? {
        guard let s = sessions[id], s.room.name == room, s.role == role else { return nil }
        return s
    }

    /// A WHIP publisher: produces what the offer sends.
    func publish(room name: String, offer: SessionDescription) throws(Refusal) -> Created {
        let room = try openRoom(name)
        guard room.publishers.count < limits.maxPublishersPerRoom else {
            closeIfEmpty(room)
            throw .full("room \(name) has its maximum of \(limits.maxPublishersPerRoom) publishers")
        }
        let session: Session
        do { session = try newSession(.publish, room: room, on: room.router, workerId: room.workerId, publisherId: nil, offer: offer) } catch {
            closeIfEmpty(room)
            throw .rejected(error)
        }
        do {
            let (answer, producers) = try session.transport.answerPublishOffer(offer, appData: ["room": .string(name), "session": .string(session.id)])
            session.producers = producers
            room.publishers.append(session)
            sessions[session.id] = session
            watch(session)
            logger.debug("publisher joined", metadata: ["room": "\(name)", "session": "\(session.id)", "tracks": "\(producers.count)"])
            return Created(id: session.id, answer: answer.text, etag: session.etag)
        } catch {
            session.transport.close()
            closeIfEmpty(room)
            throw .rejected(error)
        }
    }

    /// A room's publishers: WHIP sessions, then JSON-RPC transports with
    /// producers (on any of the room's routers), then publishers of cluster
    /// nodes mirroring the room (their producers arrive on pipes, named by
    /// `appData.publisher`), as (id, producers). A mirror lists the home's
    /// and its own.
    func publishers(of room: Room) -> [(id: String, producers: [Producer], rpcTransport: Transport?)] {
        var out: [(id: String, producers: [Producer], rpcTransport: Transport?)] = []
        if let mirror = room.mirror { out = mirror.publishers.map { ($0.id, $0.producers.filter { !$0.closed }, nil) } }
        out += room.publishers.map { ($0.id, $0.producers.filter { !$0.closed }, nil as Transport?) }
        var listed = Set(out.flatMap { $0.producers.map(\.id) })
        let ours = Set(room.publishers.map { $0.transport.id })
        let transports = routers(of: room).flatMap { $0.1.publishingTransports }.filter { !ours.contains($0.id) }
        for t in transports where !(t is PipeTransport) {
            out.append((t.id, t.openProducers, t))
            listed.formUnion(t.openProducers.map(\.id))
        }
        // Pipes also carry copies of producers listed above (in-process
        // pipes to edges): only the first sighting of a producer counts. A
        // pipe's producer never joins a publisher of this node (a member's
        // own pipe could name one to slip its media in).
        let local = Set(out.map(\.id))
        for t in transports where t is PipeTransport {
            for p in t.openProducers where !listed.contains(p.id) {
                guard case .string(let publisher)? = p.appData["publisher"], !local.contains(publisher) else { continue }
                listed.insert(p.id)
                if let i = out.firstIndex(where: { $0.id == publisher }) { out[i].producers.append(p) } else { out.append((publisher, [p], t)) }
            }
        }
        return out
    }

    /// A WHEP player of one publisher (the given one, else the room's first).
    func play(room name: String, publisher: String?, offer: SessionDescription) throws(Refusal) -> Created {
        guard let room = rooms[name] else { throw .notFound("room \(name) has no publisher") }
        do { return try startPlayer(room, publisher: publisher, offer: offer) } catch {
            // Nothing opened for this player alone stays: an edge router,
            // or a mirror of a room homed on another node.
            closeIdleEdges(room)
            closeIfEmpty(room)
            throw error
        }
    }

    private func startPlayer(_ room: Room, publisher: String?, offer: SessionDescription) throws(Refusal) -> Created {
        let name = room.name
        let all = publishers(of: room)
        let found = publisher.map { id in all.first { $0.id == id } } ?? all.first
        guard let source = found else { throw .notFound(publisher.map { "publisher \($0) is not in room \(name)" } ?? "room \(name) has no publisher") }
        guard room.players.count < limits.maxPlayersPerRoom else {
            throw .full("room \(name) has its maximum of \(limits.maxPlayersPerRoom) players")
        }
        let session: Session
        let producers: [Producer]
        do {
            let (workerId, router) = try memberRouter(room)
            producers = try source.producers.map { p throws(SFUError) in try pipeIn(p.id, room: room, to: router) ?? p }
            session = try newSession(.play, room: room, on: router, workerId: workerId, publisherId: source.id, offer: offer)
        } catch {
            throw .rejected(error)
        }
        if let transport = source.rpcTransport { followRpcPublisher(transport, room: room) }
        do {
            let (answer, consumers) = try session.transport.answerPlaybackOffer(offer, producers: producers, streamId: source.id)
            session.consumers = consumers
            room.players.append(session)
            sessions[session.id] = session
            watch(session)
            return Created(id: session.id, answer: answer.text, etag: session.etag)
        } catch {
            session.transport.close()
            throw .rejected(error)
        }
    }

    /// Ends a session (DELETE, a failed connection, or its publisher left).
    func end(_ id: String, reason: String) {
        guard let s = sessions.removeValue(forKey: id) else { return }
        logger.debug("session ended", metadata: ["session": "\(id)", "reason": "\(reason)"])
        s.transport.close()
        let room = s.room
        room.publishers.removeAll { $0 === s }
        room.players.removeAll { $0 === s }
        if s.role == .publish {
            // Its players have nothing left to play: their sessions end too
            // (closing the transport ends the player's DTLS session).
            for p in room.players where p.publisherId == id { end(p.id, reason: "publisher left") }
        }
        closeIdleEdges(room)
        closeIfEmpty(room)
    }

    func endAll() {
        for id in Array(sessions.keys) { end(id, reason: "server shutting down") }
    }

    var sessionCount: Int { sessions.count }

    func openRoom(_ name: String) throws(Refusal) -> Room {
        if let room = rooms[name] { return room }
        guard rooms.count < limits.maxRooms else { throw .full("the server has its maximum of \(limits.maxRooms) rooms") }
        guard let worker = pool.leastLoaded() else { throw .full("no worker is running") }
        let router: Router
        do { router = try worker.createRouter(mediaCodecs: Self.mediaCodecs, appData: ["room": .string(name)]) } catch { throw .full(error.message) }
        let room = Room(name: name, router: router, workerId: worker.id)
        rooms[name] = room
        return room
    }

    func closeIfEmpty(_ room: Room) {
        guard room.publishers.isEmpty, room.players.isEmpty, room.rpcMemberCount == 0 else { return }
        forget(room)
    }

    /// Closes the room and its routers (JSON-RPC members' transports get
    /// `routerclose`); a new session of the name opens a new room.
    func forget(_ room: Room) {
        guard rooms[room.name] === room else { return }
        rooms[room.name] = nil
        for edge in room.edges.values { edge.close() }
        room.edges = [:]
        room.mirror?.close()
        room.router.close()
    }

    private func newSession(_ role: Role, room: Room, on router: Router, workerId: String, publisherId: String?,
                            offer: SessionDescription) throws(SFUError) -> Session {
        let announced = limits.workerAnnouncedAddresses[workerId] ?? limits.announcedAddress
        if limits.listenIp == "0.0.0.0" || limits.listenIp == "::", announced == nil {
            throw .invalidState("media listens on \(limits.listenIp): start the server with --announced-address (the address peers reach it at) or --media-ip")
        }
        let listen = ["udp", "tcp"].map { TransportListenInfo(protocol: $0, ip: limits.listenIp, announcedAddress: announced) }
        let transport = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: listen, enableUdp: true, enableTcp: true, preferUdp: true))
        let session = Session(id: SessionIds.sessionId(), role: role, room: room, workerId: workerId, transport: transport, publisherId: publisherId)
        session.remoteUfrag = offer.media.lazy.compactMap { $0.attribute("ice-ufrag") }.first ?? offer.attribute("ice-ufrag")
        return session
    }

    /// PATCH (RFC 9725 section 4.3): an ICE restart (new remote
    /// credentials) answers with our new credentials and candidates; a
    /// fragment with only candidates is accepted and ignored, as an ICE-lite
    /// server learns the remote's addresses from its checks. Nil: no restart.
    func patch(_ id: String, room: String, role: Role, fragment: String) throws(Refusal) -> (fragment: String, etag: String)? {
        guard let s = session(id, room: room, role: role) else { throw .notFound("no such session") }
        var ufrag: String? = nil, pwd: String? = nil
        for line in fragment.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("a=ice-ufrag:") { ufrag = String(line.dropFirst(12)) }
            if line.hasPrefix("a=ice-pwd:") { pwd = String(line.dropFirst(10)) }
        }
        guard let ufrag, ufrag != s.remoteUfrag else { return nil }
        guard pwd != nil else { throw .rejected(.invalidArgument("an ICE restart needs a=ice-pwd with a=ice-ufrag")) }
        s.remoteUfrag = ufrag
        do {
            let text = try s.transport.restartIceFragment()
            return (text, s.etag)
        } catch { throw .rejected(error) }
    }

    func session(exists id: String, room: String, role: Role) -> Bool { session(id, room: room, role: role) != nil }

    func etag(_ id: String, room: String, role: Role) -> String? { session(id, room: room, role: role)?.etag }

    /// The room as `GET /rooms/{room}` shows it.
    func describe(_ name: String) -> RoomInfo {
        guard let room = rooms[name] else { return RoomInfo(name: name, publishers: [], players: 0) }
        return RoomInfo(name: name, publishers: publishers(of: room).map { p in
            RoomInfo.Publisher(id: p.id, tracks: p.producers.map { $0.kind.rawValue })
        }, players: room.players.count)
    }

    /// Players of a JSON-RPC publisher end with its transport.
    private var followed = Set<String>()
    private func followRpcPublisher(_ transport: Transport, room: Room) {
        guard followed.insert(transport.id).inserted else { return }
        let id = transport.id, observer = transport.observer
        Task { @RingSFUActor [weak self] in
            for await event in observer { if case .close = event { break } }
            guard let self else { return }
            self.followed.remove(id)
            for p in room.players where p.publisherId == id { self.end(p.id, reason: "publisher left") }
        }
    }

    /// Ends the session when its connection fails or closes, or when it is
    /// not connected within the limit.
    private func watch(_ session: Session) {
        let id = session.id, events = session.transport.events, timeout = limits.connectTimeout
        Task { @RingSFUActor [weak self] in
            try? await Task.sleep(for: timeout)
            guard let self, let s = self.sessions[id], s.transport.dtlsState != .connected else { return }
            self.end(id, reason: "not connected within \(timeout)")
        }
        Task { @RingSFUActor [weak self] in
            for await event in events {
                switch event {
                case .dtlsStateChange(.failed), .dtlsStateChange(.closed): self?.end(id, reason: "DTLS closed or failed")
                case .iceStateChange(.disconnected): self?.end(id, reason: "ICE disconnected")
                case .routerClose: self?.end(id, reason: "router closed")
                default: continue
                }
            }
        }
    }
}
