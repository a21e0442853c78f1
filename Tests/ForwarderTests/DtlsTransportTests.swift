import Testing
import RingSFUTestSupport
@testable import RingSFUForwarder

/// DTLS 1.2 between two in-memory endpoints: handshake, fingerprints,
/// exported SRTP keys that interoperate, retransmission and bad input.
@Suite("DTLS", .serialized)
struct DtlsTransportTests {
    /// Moves every pending datagram from `a` to `b`; returns how many moved.
    func pump(_ a: inout DtlsTransport, _ b: inout DtlsTransport, drop: Bool = false) -> Int {
        var moved = 0
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { a.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
            if n == 0 { break }
            moved += 1
            if !drop { buf.withUnsafeBytes { _ = b.receive($0.baseAddress!, count: n) } }
        }
        return moved
    }

    /// Drives both ends until connected (or `seconds` pass). OpenSSL's
    /// timers run on the real clock: on a busy machine (the whole suite at
    /// once) a flight of either side may come due again between two
    /// pumps, so timeouts are served and the round count is not fixed.
    func handshake(_ client: inout DtlsTransport, _ server: inout DtlsTransport, seconds: Int = 10) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while (client.state != .connected || server.state != .connected) && ContinuousClock.now < deadline {
            let moved = pump(&client, &server) + pump(&server, &client)
            if client.timeoutMs == 0 { client.handleTimeout() }
            if server.timeoutMs == 0 { server.handleTimeout() }
            if moved == 0 { usleep(1000) }
        }
    }

    @Test func handshakeExportsMatchingSrtpKeys() throws {
        let serverCtx = try DtlsContext(), clientCtx = try DtlsContext()
        var client = try DtlsTransport(context: clientCtx, role: .client)
        var server = try DtlsTransport(context: serverCtx, role: .server)
        client.start()
        server.start()
        handshake(&client, &server)
        let states = (client.state, server.state)
        #expect(states.0 == .connected && states.1 == .connected)
        for alg in DtlsContext.algorithms {
            let a = client.peerFingerprint(alg), b = server.peerFingerprint(alg)
            #expect(a == serverCtx.fingerprint(alg))
            #expect(b == clientCtx.fingerprint(alg))
        }
        #expect(serverCtx.fingerprint("sha-256")?.count == 95)
        #expect(serverCtx.fingerprint("md5") == nil)
        let ck = client.srtpKeys(), sk = server.srtpKeys()
        let c = try #require(ck), s = try #require(sk)
        #expect(c.suite == .aeadAes256Gcm && s.suite == c.suite) // GCM preferred
        #expect(c.send == s.receive && c.receive == s.send)
        #expect(c.send != c.receive)
        // The keys work with libsrtp in both directions.
        try SrtpLibrary.initialize(openssl: true)
        let out = try SrtpSession(suite: c.suite, key: c.send.key, direction: .outbound)
        let inb = try SrtpSession(suite: s.suite, key: s.receive.key, direction: .inbound)
        let packet = makeRtp(seq: 1, ssrc: 5)
        var buf = packet + Array(repeating: 0, count: 64)
        var len = packet.count
        try buf.withUnsafeMutableBytes { raw in
            try out.protect(raw.baseAddress!, length: &len, capacity: raw.count)
            try inb.unprotect(raw.baseAddress!, length: &len)
        }
        #expect(Array(buf[0..<len]) == packet)
    }

    @Test func lostFlightIsRetransmitted() throws {
        let ctx = try DtlsContext()
        var client = try DtlsTransport(context: ctx, role: .client)
        var server = try DtlsTransport(context: ctx, role: .server)
        client.start()
        // The ClientHello is lost.
        #expect(pump(&client, &server, drop: true) > 0)
        let pending = client.timeoutMs
        let timeout = try #require(pending)
        // On our schedule, not OpenSSL's 1 s.
        #expect(timeout <= 100)
        // Not due yet: nothing to resend.
        if timeout > 20 {
            client.handleTimeout()
            #expect(pump(&client, &server, drop: true) == 0)
        }
        // Once due, the flight goes again and the handshake completes.
        usleep(UInt32(timeout + 5) * 1000)
        client.handleTimeout()
        handshake(&client, &server)
        let states = (client.state, server.state)
        #expect(states.0 == .connected && states.1 == .connected)
    }

    /// The retransmission schedule, on simulated time: when each resend of
    /// an unanswered flight happens, and when OpenSSL (12 timeouts) gives up.
    @Test func backoffDoublesFrom100MsTo4S() {
        var previous: UInt32 = 0, at: UInt64 = 0
        var resends: [UInt64] = []
        for _ in 0..<12 {
            previous = DtlsBackoff.next(afterMicroseconds: previous)
            at += UInt64(previous)
            resends.append(at / 1000)
        }
        #expect(resends == [100, 300, 700, 1500, 3100, 6300, 10300, 14300, 18300, 22300, 26300, 30300])
        #expect(DtlsBackoff.next(afterMicroseconds: DtlsBackoff.maxMicroseconds) == DtlsBackoff.maxMicroseconds)
    }

    @Test func garbageFailsCleanly() throws {
        let ctx = try DtlsContext()
        var server = try DtlsTransport(context: ctx, role: .server)
        server.start()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var junk = (0..<Int.random(in: 1...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            junk[0] = 22 // handshake content type
            junk.withUnsafeBytes { _ = server.receive($0.baseAddress!, count: $0.count) }
        }
        let state = server.state
        let keys = server.srtpKeys()
        #expect(state != .connected)
        #expect(keys == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
