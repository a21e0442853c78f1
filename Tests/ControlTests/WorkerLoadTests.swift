import Testing
@testable import RingSFU
@testable import RingSFUServer

/// Where rooms and their players go: worker loads on simulated time, the
/// pool's choice by load, and a room spilling onto another worker.
@Suite("Worker load and room placement")
struct WorkerLoadTests {
    static let second: Int64 = 1_000_000_000

    @Test func loadFollowsCpuAndPacketRate() {
        var l = WorkerLoad()
        l.sample(nowNs: 0, packetsOut: 1000, cpuSeconds: 5)
        #expect(l.score == 0, "the first sample is the baseline")
        // Half a core, 30k packets a second, for a few seconds.
        for i in 1...6 { l.sample(nowNs: Int64(i) * Self.second, packetsOut: 1000 + UInt64(i) * 30_000, cpuSeconds: 5 + Double(i) * 0.5) }
        #expect(abs(l.cpu - 0.5) < 0.02)
        #expect(abs(l.packetsPerSecond - 30_000) < 1000)
        #expect(abs(l.score - 0.5) < 0.02)
        #expect(l.busy(0.4) && !l.busy(0.75))
        // Packets that CPU does not show yet (a sample of a burst): the rate decides.
        var burst = WorkerLoad()
        burst.sample(nowNs: 0, packetsOut: 0, cpuSeconds: 0)
        burst.sample(nowNs: Self.second, packetsOut: 480_000, cpuSeconds: 0.1)
        #expect(abs(burst.score - 0.8) < 0.01)
        // Idle again: it decays.
        for i in 2...8 { l.sample(nowNs: Int64(i + 6) * Self.second, packetsOut: 181_000, cpuSeconds: 8) }
        #expect(l.score < 0.05)
        // A counter that went back (a restarted worker) is no negative rate.
        l.sample(nowNs: 20 * Self.second, packetsOut: 0, cpuSeconds: 0)
        #expect(l.packetsPerSecond >= 0 && l.cpu >= 0)
    }

    @Test @RingSFUActor func thePoolPicksByLoadThenEntities() async throws {
        let pool = WorkerPool()
        try await pool.start(count: 2, settings: WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999))
        defer { pool.closeAll() }
        let (a, b) = (pool.workers[0], pool.workers[1])
        // Equal loads: the one with fewer entities.
        _ = try a.createRouter(mediaCodecs: [opus])
        #expect(pool.leastLoaded() === b)
        // b busy (70 % of a core), a idle: a, although it has more entities.
        var busy = WorkerLoad()
        busy.sample(nowNs: 0, packetsOut: 0, cpuSeconds: 0)
        for i in 1...8 { busy.sample(nowNs: Int64(i) * Self.second, packetsOut: 0, cpuSeconds: Double(i) * 0.7) }
        pool.loads[b.id] = busy
        #expect(pool.leastLoaded() === a)
        #expect(pool.leastLoaded(except: [a.id]) === b)
        #expect(pool.leastLoaded(except: [a.id, b.id]) == nil)
    }

    /// Rooms over two workers, spilling past `membersPerWorker` members.
    @RingSFUActor func twoWorkerRooms(membersPerWorker: Int) async throws -> (WorkerPool, Rooms) {
        let pool = WorkerPool()
        try await pool.start(count: 2, settings: WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999))
        var limits = Rooms.Limits()
        limits.playersPerWorker = membersPerWorker
        return (pool, Rooms(pool: pool, limits: limits))
    }

    /// Two players per worker: the third and fourth go to an edge router of
    /// the room on the other worker (the publisher's producers piped there),
    /// the fifth back home; the edge closes with its last player.
    @Test @RingSFUActor func playersSpillOntoAnEdgeRouter() async throws {
        let (pool, rooms) = try await twoWorkerRooms(membersPerWorker: 2)
        defer { pool.closeAll() }
        _ = try rooms.publish(room: "big", offer: SessionDescription(parsing: SdpTests.publishOffer))
        let room = try #require(rooms.rooms["big"])
        var players: [String] = []
        for _ in 0..<5 { players.append(try rooms.play(room: "big", publisher: nil, offer: SessionDescription(parsing: SdpAnswerTests.playOffer)).id) }
        let other = try #require(pool.workers.first { $0.id != room.workerId })
        let edge = try #require(room.edges[other.id])
        #expect(room.players.map(\.workerId) == [room.workerId, room.workerId, other.id, other.id, room.workerId])
        // The edge consumes the publisher's video piped in under the same id.
        let video = try #require(room.publishers.first?.producers.first { $0.kind == .video })
        let piped = try #require(edge.producer(id: video.id))
        #expect(piped !== video)
        #expect(room.players[2].consumers.first?.producerId == video.id)
        #expect(room.players[2].transport.router === edge)
        // The edge's players leave: the edge closes; home plays on.
        rooms.end(players[2], reason: "test")
        #expect(!edge.closed)
        rooms.end(players[3], reason: "test")
        #expect(edge.closed && room.edges.isEmpty)
        #expect(!room.router.closed && room.players.count == 3)
        // A new player may spill again.
        _ = try rooms.play(room: "big", publisher: nil, offer: SessionDescription(parsing: SdpAnswerTests.playOffer))
        #expect(room.edges[other.id] != nil)
        rooms.endAll()
        #expect(rooms.rooms.isEmpty && room.router.closed)
    }

    /// JSON-RPC members spill as players do: the second member gets an edge
    /// router on the other worker; a producer of a member at home is piped
    /// to the edge when the edge's member consumes it, is listed once (not
    /// again as the pipe), and a WHEP player on the edge can play a
    /// publisher of the edge. The edge closes with its last member.
    @Test @RingSFUActor func rpcMembersSpillOntoAnEdgeRouter() async throws {
        let (pool, rooms) = try await twoWorkerRooms(membersPerWorker: 1)
        defer { pool.closeAll() }
        let home = try await rooms.join(room: "rpc")
        let edge = try await rooms.join(room: "rpc")
        let room = try #require(rooms.rooms["rpc"])
        #expect(home === room.router && edge !== home)
        #expect(room.edges.values.contains { $0 === edge })
        // A member publishes at home; the edge's member consumes it.
        let send = try home.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let video = try send.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 5150)))
        #expect(edge.producer(id: video.id) == nil)
        try await rooms.prepareConsume(producerId: video.id, router: edge)
        let piped = try #require(edge.producer(id: video.id))
        #expect(piped !== video)
        let recv = try edge.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let consumer = try recv.consume(ConsumerOptions(producerId: video.id, rtpCapabilities: edge.rtpCapabilities))
        #expect(consumer.producerId == video.id)
        for router in [home, edge] {
            let listed = await rooms.publishers(room: "rpc", router: router)
            #expect(listed.map(\.id) == [send.id] && listed.first?.producers.map(\.id) == [video.id])
        }
        // A member's own pipe cannot slip a producer into that publisher;
        // under a publisher id of its own (as cluster mirrors send) it is listed.
        let pipe = try home.createPipeTransport(PipeTransportOptions(listenInfo: loopback))
        _ = try pipe.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 5151), appData: ["publisher": .string(send.id)]))
        let remote = try pipe.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 5152), appData: ["publisher": .string("elsewhere")]))
        let listed = await rooms.publishers(room: "rpc", router: home)
        #expect(listed.map(\.id) == [send.id, "elsewhere"] && listed[0].producers.map(\.id) == [video.id])
        #expect(listed[1].producers.map(\.id) == [remote.id])
        pipe.close()
        // Unknown producers are left to consume's own error.
        try await rooms.prepareConsume(producerId: "nope", router: edge)
        // The home member leaves: the room stays for the edge's member.
        rooms.leave(room: "rpc", router: home)
        #expect(!edge.closed && rooms.rooms["rpc"] === room)
        rooms.leave(room: "rpc", router: edge)
        #expect(edge.closed && home.closed && rooms.rooms["rpc"] == nil)
        await #expect(throws: SFUError.self) { _ = try await rooms.join(room: "no/slash") }
    }
}
