import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing): a client that
/// connects over TCP, checks, runs DTLS and sends and receives SRTP through
/// the framed stream, as a browser behind a UDP-blocking firewall does.
@Suite("ICE-TCP") @RingSFUActor
struct IceTcpTests {
    @RingSFUActor final class TcpClient {
        let connection: TestTcpConnection
        let context: DtlsContext
        var dtls: DtlsTransport

        init(port: Int) throws {
            connection = try #require(TestTcpConnection(port: UInt16(port)))
            context = try DtlsContext()
            dtls = try DtlsTransport(context: context, role: .client)
        }

        var dtlsParameters: DtlsParameters {
            DtlsParameters(role: "client", fingerprints: [DtlsFingerprint(algorithm: "sha-256", value: context.fingerprint("sha-256")!)])
        }

        func check(ufrag: String, password: String) async -> [UInt8]? {
            connection.sendFrame(StunWriter.bindingRequest(transactionId: (0..<12).map { _ in UInt8.random(in: 0...255) },
                                                           username: Array("\(ufrag):peer".utf8), password: Array(password.utf8),
                                                           priority: 100, tieBreaker: 42, useCandidate: true))
            return await connection.receiveFrame()
        }

        func handshake() async -> DtlsTransport.State {
            dtls.start()
            var buf = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(10)
            func flush() {
                while true {
                    let n = buf.withUnsafeMutableBytes { dtls.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
                    if n == 0 { break }
                    connection.sendFrame(Array(buf[0..<n]))
                }
            }
            while dtls.state == .connecting && Date() < deadline {
                flush()
                if let reply = await connection.receiveFrame(timeoutMs: 200) {
                    reply.withUnsafeBytes { _ = dtls.receive($0.baseAddress!, count: $0.count) }
                } else if let ms = dtls.timeoutMs, ms == 0 {
                    dtls.handleTimeout()
                }
            }
            flush()
            return dtls.state
        }
    }

    func waitFor(_ condition: @RingSFUActor () -> Bool) async -> Bool {
        for _ in 0..<150 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func protect(_ packets: [[UInt8]], keys: (suite: SrtpCryptoSuite, send: SrtpKey, receive: SrtpKey)) throws -> [[UInt8]] {
        let srtp = try SrtpSession(suite: keys.suite, key: keys.send.key, direction: .outbound)
        return try packets.map { packet in
            var buf = packet + Array(repeating: 0, count: 64)
            var len = packet.count
            try buf.withUnsafeMutableBytes { raw in try srtp.protect(raw.baseAddress!, length: &len, capacity: raw.count) }
            return Array(buf[0..<len])
        }
    }

    /// Idle connections cannot take the worker's ICE-TCP table: one source
    /// address holds at most its cap of connections without a STUN check
    /// (the rest are refused at once), those are closed after the idle
    /// timeout on a transport's own listener too, and clients that check
    /// keep connecting throughout.
    @Test func idleConnectionsAreCappedAndReaped() async throws {
        var settings = WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 64, maxProducers: 64, maxConsumers: 64)
        settings.tcpIdleTimeoutMs = 1500
        let worker = try await Worker.create(settings)
        let router = try worker.createRouter(mediaCodecs: [opus])
        let listen = [TransportListenInfo(protocol: "tcp", ip: "127.0.0.1")]
        let victim = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: listen))
        let other = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: listen))
        let victimPort = try #require(victim.iceCandidates.first?.port)
        // 500 connections from "another machine" that never speak.
        var idle: [TestTcpConnection] = []
        for _ in 0..<500 {
            if let c = TestTcpConnection(port: UInt16(victimPort), sourceIp: "127.0.0.2") { idle.append(c) }
        }
        #expect(idle.count == 500)
        var usage = await worker.getResourceUsage()
        for _ in 0..<100 where usage.tcpAccepted + usage.tcpRefused < 500 {
            try await Task.sleep(for: .milliseconds(20))
            usage = await worker.getResourceUsage()
        }
        #expect(usage.tcpAccepted == 16 && usage.tcpRefused == 484, "accepted \(usage.tcpAccepted), refused \(usage.tcpRefused)")
        // Clients that check still get in, on the flooded listener and elsewhere.
        var clients: [TcpClient] = []
        for (t, port) in [(victim, victimPort), (other, try #require(other.iceCandidates.first?.port))] {
            let client = try TcpClient(port: port)
            clients.append(client)
            let reply = try #require(await client.check(ufrag: t.iceParameters.usernameFragment, password: t.iceParameters.password))
            let m = try reply.withUnsafeBytes { try StunMessage.parse($0.baseAddress!, count: $0.count) }
            #expect(m.messageClass == .success)
        }
        // The silent ones are closed after the idle timeout; the checked ones stay.
        for _ in 0..<150 where usage.tcpReaped < 16 {
            try await Task.sleep(for: .milliseconds(20))
            usage = await worker.getResourceUsage()
        }
        #expect(usage.tcpReaped == 16)
        #expect(usage.tcpConnections == 2)
        // The table has room again for that source.
        let late = try #require(TestTcpConnection(port: UInt16(victimPort), sourceIp: "127.0.0.2"))
        for _ in 0..<100 where usage.tcpAccepted < 19 {
            try await Task.sleep(for: .milliseconds(20))
            usage = await worker.getResourceUsage()
        }
        #expect(usage.tcpAccepted == 19)
        _ = late
        clients.removeAll()
        idle.removeAll()
        worker.close()
    }

    @Test func candidatesFollowListenInfosAndPreferences() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let both = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: nil, ip: "127.0.0.1")], enableTcp: true, preferTcp: true))
        #expect(both.iceCandidates.map(\.protocol) == ["udp", "tcp"])
        #expect(both.iceCandidates[1].tcpType == "passive" && both.iceCandidates[0].tcpType == nil)
        // Local preference 10000 for the first entry, 9900 (+1000 preferred) for the second.
        #expect(both.iceCandidates[0].priority == (64 << 24) + (10_000 << 8) + 255)
        #expect(both.iceCandidates[1].priority == (64 << 24) + (10_900 << 8) + 255)
        let tcpOnly = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: "tcp", ip: "127.0.0.1")]))
        #expect(tcpOnly.iceCandidates.map(\.protocol) == ["tcp"])
        #expect(throws: SFUError.self) {
            try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: "sctp", ip: "127.0.0.1")]))
        }
        #expect(throws: SFUError.self) {
            try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: nil, ip: "127.0.0.1")], enableUdp: false, enableTcp: false))
        }
        worker.close()
    }

    /// Publish and consume over one ICE-TCP connection of a transport's own
    /// listener; the connection closing takes ICE to "disconnected".
    @Test func mediaBothWaysOverTcp() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: "tcp", ip: "127.0.0.1")]))
        let client = try TcpClient(port: t.iceCandidates[0].port)
        try t.connect(dtlsParameters: client.dtlsParameters)
        // A wrong password gets no answer; the right one does.
        #expect(await client.check(ufrag: t.iceParameters.usernameFragment, password: "wrong-password-wrong-password-00") == nil)
        let response = try #require(await client.check(ufrag: t.iceParameters.usernameFragment, password: t.iceParameters.password))
        let m = try response.withUnsafeBytes { try StunMessage.parse($0.baseAddress!, count: $0.count) }
        #expect(m.messageClass == .success)
        #expect(await client.handshake() == .connected)
        #expect(await waitFor { t.dtlsState == .connected })
        #expect(t.iceSelectedTuple?.protocol == "tcp")
        #expect(t.iceSelectedTuple?.remotePort == Int(client.connection.localPort))
        #expect(t.iceSelectedTuple?.localPort == t.iceCandidates[0].port)
        let stats = try await t.getStats()
        #expect(stats[0].iceSelectedTuple?.protocol == "tcp" && stats[0].dtlsState == .connected && stats[0].iceState == .completed)
        let exported = client.dtls.srtpKeys()
        let keys = try #require(exported)

        // Client -> SFU -> plain sink.
        let producer = try t.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 1234)))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        // Plain source -> SFU -> client, over the same connection.
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let source = try ingress.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 777)))
        let consumer = try t.consume(ConsumerOptions(producerId: source.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        // Several packets in one write: the SFU must split the frames.
        let frames = try protect((0..<5).map { makeRtp(pt: 111, seq: UInt16($0), ssrc: 1234) }, keys: keys)
        client.connection.sendRaw(frames.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 })
        #expect(await sink.receiveAll(5).count == 5)

        let feeder = TestSocket()
        for i in 0..<5 { feeder.send(makeRtp(pt: 111, seq: UInt16(i), ssrc: 777), to: UInt16(ingress.tuple.localPort)) }
        let srtpIn = try SrtpSession(suite: keys.suite, key: keys.receive.key, direction: .inbound)
        var received = 0
        while let frame = await client.connection.receiveFrame(timeoutMs: 1000) {
            // Only RTP (RFC 7983): when the test runs slowly, reports and a
            // retransmitted final DTLS flight may come in between.
            guard frame.count >= 12, (128...191).contains(frame[0]), !(192...223).contains(frame[1]) else { continue }
            var buf = frame
            var len = buf.count
            try buf.withUnsafeMutableBytes { raw in try srtpIn.unprotect(raw.baseAddress!, length: &len) }
            let header = try buf.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: len) }
            #expect(header.ssrc == consumer.rtpParameters.encodings?[0].ssrc)
            received += 1
            if received == 5 { break }
        }
        #expect(received == 5)
        let usage = await worker.getResourceUsage()
        #expect(usage.tcpAccepted == 1)
        // Packets out over TCP count like UDP ones: 5 to the sink, 5 framed
        // to the client, and the STUN answer (plus any RTCP report).
        #expect(usage.packetsOut >= 11, "\(usage.packetsOut)")

        // The peer goes away: the selected tuple is lost.
        client.connection.sendRaw([])
        close(client.connection.fd)
        #expect(await waitFor { t.iceState == .disconnected })
        t.close()
        await worker.sync()
        #expect(await worker.getResourceUsage().tcpConnections == 0)
        worker.close()
    }

    /// A WebRtcServer with a TCP listener: connections are matched to their
    /// transport by the STUN ufrag; garbage framing closes a connection;
    /// closing the server closes every connection.
    @Test func webRtcServerOverTcp() async throws {
        let worker = try await testWorker()
        let server = try worker.createWebRtcServer(WebRtcServerOptions(listenInfos: [loopback, TransportListenInfo(protocol: "tcp", ip: "127.0.0.1")]))
        #expect(server.tuples.map(\.protocol) == ["udp", "tcp"])
        let router = try worker.createRouter(mediaCodecs: [opus])
        let a = try router.createWebRtcTransport(WebRtcTransportOptions(webRtcServerId: server.id))
        let b = try router.createWebRtcTransport(WebRtcTransportOptions(enableUdp: false, webRtcServerId: server.id))
        #expect(a.iceCandidates.map(\.protocol) == ["udp", "tcp"])
        #expect(b.iceCandidates.map(\.protocol) == ["tcp"])
        let tcpPort = server.tuples[1].localPort
        let ca = try TcpClient(port: tcpPort), cb = try TcpClient(port: tcpPort)
        try a.connect(dtlsParameters: ca.dtlsParameters)
        try b.connect(dtlsParameters: cb.dtlsParameters)
        #expect(await ca.check(ufrag: "unknown", password: a.iceParameters.password) == nil)
        #expect(await ca.check(ufrag: a.iceParameters.usernameFragment, password: a.iceParameters.password) != nil)
        #expect(await cb.check(ufrag: b.iceParameters.usernameFragment, password: b.iceParameters.password) != nil)
        let stateA = await ca.handshake(), stateB = await cb.handshake()
        #expect(stateA == .connected && stateB == .connected)
        #expect(await waitFor { a.dtlsState == .connected && b.dtlsState == .connected })
        let pa = try a.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 1)))
        let pb = try b.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 2)))
        let sinkA = TestSocket(), sinkB = TestSocket()
        for (p, sink) in [(pa, sinkA), (pb, sinkB)] {
            let e = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
            try e.connect(ip: "127.0.0.1", port: Int(sink.port))
            _ = try e.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: router.rtpCapabilities))
        }
        await worker.sync()
        for (client, ssrc) in [(ca, UInt32(1)), (cb, UInt32(2))] {
            let exported = client.dtls.srtpKeys()
        let keys = try #require(exported)
            for f in try protect((0..<3).map { makeRtp(pt: 111, seq: UInt16($0), ssrc: ssrc) }, keys: keys) { client.connection.sendFrame(f) }
        }
        #expect(await sinkA.receiveAll(3).count == 3)
        #expect(await sinkB.receiveAll(3).count == 3)

        // A frame longer than any packet: the connection is dropped.
        let rogue = try #require(TestTcpConnection(port: UInt16(tcpPort)))
        rogue.sendRaw([0xFF, 0xFF] + Array(repeating: 0, count: 100))
        #expect(await rogue.peerClosed())
        let usage = await worker.getResourceUsage()
        #expect(usage.dropTcpFrame == 1)

        server.close()
        #expect(a.closed && b.closed)
        let closedA = await ca.connection.peerClosed(), closedB = await cb.connection.peerClosed()
        #expect(closedA && closedB)
        await worker.sync()
        #expect(await worker.getResourceUsage().tcpConnections == 0)
        worker.close()
    }
}
