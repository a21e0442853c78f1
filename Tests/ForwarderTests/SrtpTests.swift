import Testing
import RingSFUTestSupport
@testable import RingSFUForwarder

/// SRTP with libsrtp2: the OpenSSL-backed types against the stock (NSS)
/// ones, in both directions, for every suite.
@Suite("SRTP", .serialized)
struct SrtpTests {
    static func key(_ suite: SrtpCryptoSuite, seed: UInt8 = 7) -> [UInt8] {
        (0..<suite.keyLength).map { UInt8(truncatingIfNeeded: Int($0) &* 31 &+ Int(seed)) }
    }

    /// A session created while the stock or the OpenSSL types are installed.
    static func session(_ suite: SrtpCryptoSuite, _ dir: SrtpSession.Direction, openssl: Bool) throws -> SrtpSession {
        try SrtpLibrary.initialize(openssl: openssl)
        return try SrtpSession(suite: suite, key: key(suite), direction: dir)
    }

    func protect(_ s: borrowing SrtpSession, _ packet: [UInt8]) throws -> [UInt8] {
        var buf = packet + Array(repeating: 0, count: SrtpSession.maxTrailer + 8)
        var len = packet.count
        try buf.withUnsafeMutableBytes { raw in try s.protect(raw.baseAddress!, length: &len, capacity: raw.count) }
        return Array(buf[0..<len])
    }

    func unprotect(_ s: borrowing SrtpSession, _ packet: [UInt8]) throws(SrtpError) -> [UInt8] {
        var buf = packet
        var len = packet.count
        var failure: SrtpError? = nil
        buf.withUnsafeMutableBytes { raw in
            do throws(SrtpError) { try s.unprotect(raw.baseAddress!, length: &len) } catch { failure = error }
        }
        if let failure { throw failure }
        return Array(buf[0..<len])
    }

    @Test(arguments: SrtpCryptoSuite.allCases)
    func interoperatesWithTheStockLibrary(suite: SrtpCryptoSuite) throws {
        let stockOut = try Self.session(suite, .outbound, openssl: false)
        let stockIn = try Self.session(suite, .inbound, openssl: false)
        let fastOut = try Self.session(suite, .outbound, openssl: true)
        let fastIn = try Self.session(suite, .inbound, openssl: true)
        // Across a sequence number wrap, so the rollover counter moves.
        for seq in [UInt16(65530), 65531, 65532, 65533, 65534, 65535, 0, 1, 2] {
            let packet = makeRtp(seq: seq, ts: UInt32(seq) * 3000, ssrc: 0x1234, payload: (0..<1188).map { UInt8(truncatingIfNeeded: $0 &+ Int(seq)) })
            let a = try protect(stockOut, packet)
            let b = try protect(fastOut, packet)
            #expect(a == b, "byte-for-byte identical output")
            #expect(a.count > packet.count)
            #expect(try unprotect(fastIn, a) == packet)
            #expect(try unprotect(stockIn, b) == packet)
        }
        try SrtpLibrary.initialize(openssl: true)
    }

    @Test(arguments: SrtpCryptoSuite.allCases)
    func replayAndTampering(suite: SrtpCryptoSuite) throws {
        let out = try Self.session(suite, .outbound, openssl: true)
        let inb = try Self.session(suite, .inbound, openssl: true)
        let packet = makeRtp(seq: 10, ssrc: 99)
        let p = try protect(out, packet)
        #expect(try unprotect(inb, p) == packet)
        #expect(throws: SrtpError.replay) { try unprotect(inb, p) }
        var tampered = try protect(out, makeRtp(seq: 11, ssrc: 99))
        tampered[20] ^= 0x01
        #expect(throws: SrtpError.authFailure) { try unprotect(inb, tampered) }
        // Garbage never traps.
        #expect(throws: SrtpError.self) { try unprotect(inb, [0x80, 0, 0]) }
        #expect(throws: SrtpError.self) { try unprotect(inb, Array(repeating: 0x80, count: 40)) }
    }

    @Test(arguments: SrtpCryptoSuite.allCases)
    func rtcpRoundTrip(suite: SrtpCryptoSuite) throws {
        let out = try Self.session(suite, .outbound, openssl: true)
        let stockIn = try Self.session(suite, .inbound, openssl: false)
        let rr: [UInt8] = [0x80, 201, 0, 1, 0, 0, 0, 42]
        var buf = rr + Array(repeating: 0, count: SrtpSession.maxTrailer + 16)
        var len = rr.count
        try buf.withUnsafeMutableBytes { raw in try out.protectRtcp(raw.baseAddress!, length: &len, capacity: raw.count) }
        var back = Array(buf[0..<len])
        var backLen = len
        try back.withUnsafeMutableBytes { raw in try stockIn.unprotectRtcp(raw.baseAddress!, length: &backLen) }
        #expect(Array(back[0..<backLen]) == rr)
        try SrtpLibrary.initialize(openssl: true)
    }

    @Test func wrongKeyLengthIsRejected() throws {
        try SrtpLibrary.initialize(openssl: true)
        #expect(throws: SrtpError.badKeyLength(3)) { _ = try SrtpSession(suite: .aeadAes128Gcm, key: [1, 2, 3], direction: .inbound) }
    }
}
