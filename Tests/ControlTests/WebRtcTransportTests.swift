import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// WebRtcTransport against a client built from the same primitives a
/// browser uses: ICE connectivity checks, a DTLS client, SRTP.
@Suite("WebRtcTransport") @RingSFUActor
struct WebRtcTransportTests {
    @RingSFUActor final class Client {
        let socket = TestSocket()
        let context: DtlsContext
        var dtls: DtlsTransport

        init() throws {
            context = try DtlsContext()
            dtls = try DtlsTransport(context: context, role: .client)
        }

        var dtlsParameters: DtlsParameters {
            DtlsParameters(role: "client", fingerprints: [DtlsFingerprint(algorithm: "sha-256", value: context.fingerprint("sha-256")!)])
        }

        /// A connectivity check; returns the response if one came back.
        func check(_ t: WebRtcTransport, password: String? = nil, ufrag: String? = nil) async -> [UInt8]? {
            let req = StunWriter.bindingRequest(transactionId: (0..<12).map { _ in UInt8.random(in: 0...255) },
                                                username: Array("\(ufrag ?? t.iceParameters.usernameFragment):peer".utf8),
                                                password: Array((password ?? t.iceParameters.password).utf8),
                                                priority: 100, tieBreaker: 42, useCandidate: true)
            socket.send(req, to: UInt16(t.iceCandidates[0].port))
            return await socket.receive(timeoutMs: 300)
        }

        /// Runs the DTLS handshake over the socket.
        func handshake(_ t: WebRtcTransport) async -> DtlsTransport.State {
            dtls.start()
            let port = UInt16(t.iceCandidates[0].port)
            var buf = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(10)
            while dtls.state == .connecting && Date() < deadline {
                while true {
                    let n = buf.withUnsafeMutableBytes { dtls.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
                    if n == 0 { break }
                    socket.send(Array(buf[0..<n]), to: port)
                }
                if let reply = await socket.receive(timeoutMs: 200) {
                    reply.withUnsafeBytes { _ = dtls.receive($0.baseAddress!, count: $0.count) }
                } else if let ms = dtls.timeoutMs, ms == 0 {
                    dtls.handleTimeout()
                }
            }
            // Flush the final flight.
            while true {
                let n = buf.withUnsafeMutableBytes { dtls.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
                if n == 0 { break }
                socket.send(Array(buf[0..<n]), to: port)
            }
            return dtls.state
        }
    }

    func waitFor(_ t: WebRtcTransport, dtlsState: DtlsState) async -> Bool {
        // Up to 5 s: the parallel run can keep this test waiting for turns.
        for _ in 0..<250 {
            if t.dtlsState == dtlsState { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test func publishThroughIceDtlsSrtp() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        #expect(t.iceParameters.iceLite == true && t.iceParameters.password.count == 32)
        #expect(t.iceCandidates.first?.type == "host" && t.iceCandidates.first?.protocol == "udp")
        #expect(t.dtlsParameters.fingerprints.map(\.algorithm) == ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"])
        let events = t.events
        let client = try Client()
        try t.connect(dtlsParameters: client.dtlsParameters)
        // Wrong password: no answer. Unknown ufrag: no answer.
        #expect(await client.check(t, password: "wrong-password-wrong-password-00") == nil)
        #expect(await client.check(t, ufrag: "nobody") == nil)
        let response = try #require(await client.check(t))
        let m = try response.withUnsafeBytes { try StunMessage.parse($0.baseAddress!, count: $0.count) }
        #expect(m.messageClass == .success)
        response.withUnsafeBytes { raw in
            Array(t.iceParameters.password.utf8).withUnsafeBytes { pw in #expect(m.checkIntegrity(raw.baseAddress!, key: pw)) }
        }
        let handshakeState = await client.handshake(t)
        #expect(handshakeState == .connected)
        #expect(await waitFor(t, dtlsState: .connected))
        #expect(t.iceState == .completed)
        #expect(t.iceSelectedTuple?.remotePort == Int(client.socket.port))

        // Media: SRTP from the client, plain RTP out of a PlainTransport.
        let producer = try t.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 1234)))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        let exported = client.dtls.srtpKeys()
        let keys = try #require(exported)
        let srtp = try SrtpSession(suite: keys.suite, key: keys.send.key, direction: .outbound)
        for i in 0..<5 {
            var buf = makeRtp(pt: 111, seq: UInt16(i), ssrc: 1234) + Array(repeating: 0, count: 64)
            var len = buf.count - 64
            try buf.withUnsafeMutableBytes { raw in try srtp.protect(raw.baseAddress!, length: &len, capacity: raw.count) }
            client.socket.send(Array(buf[0..<len]), to: UInt16(t.iceCandidates[0].port))
        }
        #expect(await sink.receiveAll(5).count == 5)
        // A STUN flood from an unknown ufrag is dropped and counted.
        for _ in 0..<100 { client.socket.send(StunWriter.bindingRequest(transactionId: Array(repeating: 1, count: 12), username: Array("intruder:x".utf8), password: Array("p".utf8), priority: 1, tieBreaker: 1, useCandidate: true), to: UInt16(t.iceCandidates[0].port)) }
        try await Task.sleep(for: .milliseconds(100))
        let usage = await worker.getResourceUsage()
        #expect(usage.dropStun >= 100)
        t.close()
        let seen = names(await collect(events))
        #expect(seen.contains("iceSelectedTupleChange") && seen.contains("iceStateChange") && seen.contains("dtlsStateChange"))
        worker.close()
    }

    @Test func wrongFingerprintFailsAndForwardsNothing() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let client = try Client()
        let other = try DtlsContext()
        try t.connect(dtlsParameters: DtlsParameters(role: "client", fingerprints: [DtlsFingerprint(algorithm: "sha-256", value: other.fingerprint("sha-256")!)]))
        #expect(await client.check(t) != nil)
        _ = await client.handshake(t)
        #expect(await waitFor(t, dtlsState: .failed))
        _ = try t.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 1234)))
        await worker.sync()
        client.socket.send(makeRtp(pt: 111, seq: 1, ssrc: 1234), to: UInt16(t.iceCandidates[0].port))
        try await Task.sleep(for: .milliseconds(50))
        let usage = await worker.getResourceUsage()
        #expect(usage.dropNotReady >= 1)
        #expect(usage.packetsOut == 0 || usage.dropNotReady >= 1)
        worker.close()
    }

    @Test func sfuAsDtlsClient() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let serverCtx = try DtlsContext()
        var server = try DtlsTransport(context: serverCtx, role: .server)
        let peer = TestSocket()
        try t.connect(dtlsParameters: DtlsParameters(role: "server", fingerprints: [DtlsFingerprint(algorithm: "sha-256", value: serverCtx.fingerprint("sha-256")!)]))
        let req = StunWriter.bindingRequest(transactionId: Array(repeating: 7, count: 12), username: Array("\(t.iceParameters.usernameFragment):p".utf8), password: Array(t.iceParameters.password.utf8), priority: 1, tieBreaker: 1, useCandidate: true)
        peer.send(req, to: UInt16(t.iceCandidates[0].port))
        // The STUN response, then the SFU's ClientHello (in either order).
        var buf = [UInt8](repeating: 0, count: 4096)
        // Generous: in the parallel run this test may get its turns late, and
        // the SFU resends its flights meanwhile (all of them are taken in).
        // Served until the SFU is connected too: if our last flight is lost
        // (the parallel floods can fill loopback's backlog), the SFU resends
        // its own and OpenSSL answers with ours again.
        // 20 s: one CI run on a loaded machine saw 10 s pass with both sides
        // still connecting; the counts below say which flights got through.
        let deadline = Date().addingTimeInterval(20)
        var datagramsIn = 0, recordsIn = 0, recordsOut = 0
        server.start()
        while (server.state == .connecting || t.dtlsState != .connected) && server.state != .failed && Date() < deadline {
            var received = false
            while let d = await peer.receive(timeoutMs: received ? 0 : 100) {
                received = true
                datagramsIn += 1
                if let first = d.first, (20...63).contains(first) {
                    recordsIn += 1
                    d.withUnsafeBytes { _ = server.receive($0.baseAddress!, count: $0.count) }
                }
            }
            if !received, server.timeoutMs == 0 { server.handleTimeout() }
            while true {
                let n = buf.withUnsafeMutableBytes { server.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
                if n == 0 { break }
                recordsOut += 1
                peer.send(Array(buf[0..<n]), to: UInt16(t.iceCandidates[0].port))
            }
        }
        let serverState = server.state
        #expect(serverState == .connected, "datagrams in \(datagramsIn), DTLS in \(recordsIn), DTLS out \(recordsOut)")
        #expect(await waitFor(t, dtlsState: .connected), "SFU: \(t.dtlsState), ICE \(t.iceState)")
        worker.close()
    }

    /// RFC 7675: no checks for the consent timeout -> "disconnected"; checks
    /// again -> "completed". (A 1 s timeout here; 30 s by default.)
    @Test func consentFreshness() async throws {
        var settings = WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 32, maxProducers: 32, maxConsumers: 64)
        settings.iceConsentTimeoutMs = 1000
        let worker = try await Worker.create(settings)
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let client = try Client()
        #expect(await client.check(t) != nil)
        var sawCompleted = false
        for _ in 0..<50 where !sawCompleted { try await Task.sleep(for: .milliseconds(20)); sawCompleted = t.iceState == .completed }
        #expect(sawCompleted)
        var sawDisconnected = false
        for _ in 0..<150 where !sawDisconnected { try await Task.sleep(for: .milliseconds(20)); sawDisconnected = t.iceState == .disconnected }
        #expect(sawDisconnected)
        #expect(await client.check(t) != nil)
        var back = false
        for _ in 0..<50 where !back { try await Task.sleep(for: .milliseconds(20)); back = t.iceState == .completed }
        #expect(back)
        worker.close()
    }

    /// Two transports on one WebRtcServer port, each with its own ICE and
    /// DTLS; closing the server closes them with listenServerClose.
    @Test func webRtcServerSharesOnePort() async throws {
        let worker = try await testWorker()
        let server = try worker.createWebRtcServer(WebRtcServerOptions(listenInfos: [loopback]))
        let sob = server.observer
        let router = try worker.createRouter(mediaCodecs: [opus])
        let a = try router.createWebRtcTransport(WebRtcTransportOptions(), webRtcServer: server)
        let b = try router.createWebRtcTransport(WebRtcTransportOptions(webRtcServerId: server.id))
        #expect(a.iceCandidates[0].port == server.tuple.localPort && b.iceCandidates[0].port == server.tuple.localPort)
        let dump = try server.dump()
        #expect(dump.udpSockets == [WebRtcServer.ListenAddress(ip: "127.0.0.1", port: server.tuple.localPort)] && dump.tcpServers.isEmpty)
        #expect(dump.webRtcTransportIds == [a.id, b.id])
        #expect(dump.localIceUsernameFragments.map(\.localIceUsernameFragment) == [a.iceParameters.usernameFragment, b.iceParameters.usernameFragment])
        let ca = try Client(), cb = try Client()
        try a.connect(dtlsParameters: ca.dtlsParameters)
        try b.connect(dtlsParameters: cb.dtlsParameters)
        let checkA = await ca.check(a), checkB = await cb.check(b)
        #expect(checkA != nil && checkB != nil)
        #expect(await ca.check(a, ufrag: "unknown") == nil)
        let sa = await ca.handshake(a), sb = await cb.handshake(b)
        #expect(sa == .connected && sb == .connected)
        #expect(await waitFor(a, dtlsState: .connected))
        #expect(await waitFor(b, dtlsState: .connected))
        // Media from each client reaches its own consumer.
        let pa = try a.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 1)))
        let pb = try b.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 2)))
        let sinkA = TestSocket(), sinkB = TestSocket()
        var consumers: [Consumer] = []
        for (p, sink) in [(pa, sinkA), (pb, sinkB)] {
            let e = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
            try e.connect(ip: "127.0.0.1", port: Int(sink.port))
            consumers.append(try e.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: router.rtpCapabilities)))
        }
        let consumerEvents = consumers.map(\.events)
        await worker.sync()
        for (client, ssrc) in [(ca, UInt32(1)), (cb, UInt32(2))] {
            let exported = client.dtls.srtpKeys()
            let keys = try #require(exported)
            let srtp = try SrtpSession(suite: keys.suite, key: keys.send.key, direction: .outbound)
            for i in 0..<3 {
                var buf = makeRtp(pt: 111, seq: UInt16(i), ssrc: ssrc) + Array(repeating: 0, count: 64)
                var len = buf.count - 64
                try buf.withUnsafeMutableBytes { raw in try srtp.protect(raw.baseAddress!, length: &len, capacity: raw.count) }
                client.socket.send(Array(buf[0..<len]), to: UInt16(server.tuple.localPort))
            }
        }
        #expect(await sinkA.receiveAll(3).count == 3)
        #expect(await sinkB.receiveAll(3).count == 3)
        let ae = a.events
        server.close()
        #expect(names(await collect(ae)) == ["listenServerClose"])
        #expect(a.closed && b.closed)
        // Consumers on the router's other transports lose their producers,
        // and the router forgets them.
        for events in consumerEvents { #expect(names(await collect(events)) == ["producerClose"]) }
        #expect(consumers.allSatisfy(\.closed) && router.producers.isEmpty)
        #expect(!router.canConsume(producerId: pa.id, rtpCapabilities: router.rtpCapabilities))
        #expect(names(await collect(sob)) == ["webRtcTransportHandled", "webRtcTransportHandled", "webRtcTransportUnhandled", "webRtcTransportUnhandled", "close"])
        #expect(await portIsFree(server.tuple.localPort))
        worker.close()
    }
}

/// SCTP over DTLS from a client built from primitives: a well-formed INIT is
/// answered, and thousands of hostile SCTP packets (random, or well-formed
/// headers with valid checksums and nonsense chunks) are absorbed without
/// harming the worker; without `enableSctp` application data is discarded.
@Suite("SCTP over DTLS") @RingSFUActor
struct SctpOverDtlsTests {
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (0x82F6_3B78 & (0 &- (c & 1))) }
        }
        return ~c
    }

    /// An SCTP packet from port 5000 to 5000 with its CRC32c (RFC 4960
    /// appendix B: stored least significant byte first).
    static func sctpPacket(tag: UInt32, chunks: [UInt8]) -> [UInt8] {
        var p: [UInt8] = [0x13, 0x88, 0x13, 0x88, UInt8(tag >> 24), UInt8(tag >> 16 & 0xFF), UInt8(tag >> 8 & 0xFF), UInt8(tag & 0xFF), 0, 0, 0, 0] + chunks
        let crc = crc32c(p)
        p[8] = UInt8(crc & 0xFF); p[9] = UInt8(crc >> 8 & 0xFF); p[10] = UInt8(crc >> 16 & 0xFF); p[11] = UInt8(crc >> 24)
        return p
    }

    static func initChunk() -> [UInt8] {
        // INIT: tag 0x01020304, a_rwnd 65536, 16 streams each way, TSN 1.
        [1, 0, 0, 20, 1, 2, 3, 4, 0, 1, 0, 0, 0, 16, 0, 16, 0, 0, 0, 1]
    }

    func send(_ client: WebRtcTransportTests.Client, _ data: [UInt8], to t: WebRtcTransport) {
        guard client.dtls.send(applicationData: data) else { return }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { client.dtls.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
            if n == 0 { break }
            client.socket.send(Array(buf[0..<n]), to: UInt16(t.iceCandidates[0].port))
        }
    }

    @Test func hostileSctpIsAbsorbed() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        var options = WebRtcTransportOptions(listenInfos: [loopback])
        options.enableSctp = true
        let t = try router.createWebRtcTransport(options)
        let client = try WebRtcTransportTests.Client()
        try t.connect(dtlsParameters: client.dtlsParameters)
        #expect(await client.check(t) != nil)
        #expect(await client.handshake(t) == .connected)
        for _ in 0..<100 where t.sctpState != "connecting" { try await Task.sleep(for: .milliseconds(20)) }
        #expect(t.sctpState == "connecting")

        // A well-formed INIT gets an INIT-ACK (chunk type 2) back: the
        // checksum and framing here are right, so the hostile packets below
        // reach usrsctp's chunk parsing.
        client.dtls.applicationData.removeAll()
        send(client, Self.sctpPacket(tag: 0, chunks: Self.initChunk()), to: t)
        var initAck = false
        for _ in 0..<50 where !initAck {
            // The control layer runs SCTP on this actor: let it.
            try await Task.sleep(for: .milliseconds(5))
            if let reply = await client.socket.receive(timeoutMs: 20) {
                reply.withUnsafeBytes { _ = client.dtls.receive($0.baseAddress!, count: $0.count) }
            }
            initAck = client.dtls.applicationData.contains { $0.count > 12 && $0[12] == 2 }
        }
        #expect(initAck, "INIT answered with INIT-ACK")

        var rng = SystemRandomNumberGenerator()
        for i in 0..<3000 {
            let length = Int.random(in: 0...300, using: &rng)
            let junk = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            switch i % 3 {
            case 0: send(client, junk, to: t) // not even a header
            case 1:
                // A valid header and checksum around a random chunk type,
                // flags and length (often longer or shorter than the data).
                let chunk = [UInt8.random(in: 0...255, using: &rng), UInt8.random(in: 0...255, using: &rng),
                             UInt8.random(in: 0...1, using: &rng), UInt8.random(in: 0...255, using: &rng)] + junk
                send(client, Self.sctpPacket(tag: UInt32.random(in: 0...3, using: &rng), chunks: chunk), to: t)
            default:
                // INITs with random parameters and counts.
                var chunk = Self.initChunk()
                chunk[12] = UInt8.random(in: 0...1, using: &rng); chunk[13] = UInt8.random(in: 0...255, using: &rng)
                chunk += junk
                chunk[2] = UInt8(chunk.count >> 8); chunk[3] = UInt8(chunk.count & 0xFF)
                send(client, Self.sctpPacket(tag: 0, chunks: chunk), to: t)
            }
            if i % 200 == 0 { await Task.yield() }
        }
        try await Task.sleep(for: .milliseconds(300))
        await worker.sync()
        // The worker and the transport are still alive and answer checks.
        #expect(!worker.died && !t.closed)
        #expect(await client.check(t) != nil)
        #expect(t.dtlsState == .connected)

        // Without enableSctp, application data is read and discarded.
        let plain = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let other = try WebRtcTransportTests.Client()
        try plain.connect(dtlsParameters: other.dtlsParameters)
        #expect(await other.check(plain) != nil)
        #expect(await other.handshake(plain) == .connected)
        for _ in 0..<100 where plain.dtlsState != .connected { try await Task.sleep(for: .milliseconds(20)) }
        let before = await worker.getResourceUsage().dropNotReady
        for _ in 0..<10 { send(other, Self.sctpPacket(tag: 0, chunks: Self.initChunk()), to: plain) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(await worker.getResourceUsage().dropNotReady >= before + 10)
        worker.close()
    }
}
