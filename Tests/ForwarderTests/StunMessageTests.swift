import Testing
import RingSFUTestSupport
@testable import RingSFUForwarder

/// STUN (RFC 5389) parsing, integrity, fingerprint and responses, checked
/// against the RFC 5769 test vectors.
@Suite("STUN")
struct StunMessageTests {
    /// RFC 5769 section 2.1: sample request (username "evtj:h6vY").
    static let sampleRequest: [UInt8] = hex("""
        000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74\
        002400046e0001ff80290008932ff9b151263b36000600096576746a3a6836765920202000080014\
        9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf
        """)
    /// RFC 5769 section 2.2: sample IPv4 response (192.0.2.1:32853).
    static let sampleResponse: [UInt8] = hex("""
        0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f722000200008\
        0001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96
        """)
    static let password = Array("VOkJxbRl1RmTxUk/WvJxBt".utf8)

    static func hex(_ s: String) -> [UInt8] {
        let digits = s.filter { $0.isHexDigit }
        var out: [UInt8] = []
        var i = digits.startIndex
        while i < digits.endIndex {
            let j = digits.index(i, offsetBy: 2)
            out.append(UInt8(digits[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    func parse(_ b: [UInt8]) throws(StunParseError) -> StunMessage {
        var r: Result<StunMessage, StunParseError> = .failure(.tooShort)
        b.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            do throws(StunParseError) { r = .success(try StunMessage.parse(base, count: raw.count)) } catch { r = .failure(error) }
        }
        return try r.get()
    }

    @Test func sampleRequestParsesAndVerifies() throws {
        let b = Self.sampleRequest
        #expect(b.count == 108)
        let m = try parse(b)
        #expect(m.method == StunMessage.binding && m.messageClass == .request)
        #expect(m.priority == 0x6e0001ff)
        #expect(m.iceControlled == 0x932ff9b151263b36)
        #expect(m.username?.length == 9)
        b.withUnsafeBytes { raw in
            #expect(m.checkFingerprint(raw.baseAddress!))
            Self.password.withUnsafeBytes { pw in #expect(m.checkIntegrity(raw.baseAddress!, key: pw)) }
            Array("wrong".utf8).withUnsafeBytes { pw in #expect(!m.checkIntegrity(raw.baseAddress!, key: pw)) }
            Array("evtj".utf8).withUnsafeBytes { uf in #expect(m.usernameStarts(with: uf, in: raw.baseAddress!)) }
            Array("evt".utf8).withUnsafeBytes { uf in #expect(!m.usernameStarts(with: uf, in: raw.baseAddress!)) }
        }
        // One flipped bit breaks integrity and fingerprint.
        var bad = b
        bad[30] ^= 1
        let m2 = try parse(bad)
        bad.withUnsafeBytes { raw in
            #expect(!m2.checkFingerprint(raw.baseAddress!))
            Self.password.withUnsafeBytes { pw in #expect(!m2.checkIntegrity(raw.baseAddress!, key: pw)) }
        }
    }

    @Test func sampleResponseVerifies() throws {
        let m = try parse(Self.sampleResponse)
        #expect(m.messageClass == .success)
        Self.sampleResponse.withUnsafeBytes { raw in
            #expect(m.checkFingerprint(raw.baseAddress!))
            Self.password.withUnsafeBytes { pw in #expect(m.checkIntegrity(raw.baseAddress!, key: pw)) }
        }
    }

    @Test(arguments: ["192.0.2.1", "2001:db8:1234:5678:11:2233:4455:6677"])
    func bindingSuccessResponse(ip: String) throws {
        let mapped = SocketAddress(ip: ip, port: 32853)!
        var out = [UInt8](repeating: 0, count: 200)
        let n = Self.sampleRequest.withUnsafeBytes { req in
            Self.password.withUnsafeBytes { pw in
                out.withUnsafeMutableBytes { o in StunWriter.bindingSuccess(to: req.baseAddress!, mapped: mapped, password: pw, into: o.baseAddress!, capacity: o.count) }
            }
        }
        #expect(n > 0)
        let resp = Array(out[0..<n])
        let m = try parse(resp)
        #expect(m.messageClass == .success && m.method == StunMessage.binding)
        #expect(resp[8..<20] == Self.sampleRequest[8..<20])
        resp.withUnsafeBytes { raw in
            #expect(m.checkFingerprint(raw.baseAddress!))
            Self.password.withUnsafeBytes { pw in #expect(m.checkIntegrity(raw.baseAddress!, key: pw)) }
        }
        // Same XOR-MAPPED-ADDRESS bytes as the RFC's sample responses.
        if ip == "192.0.2.1" {
            #expect(resp[20..<32] == Self.sampleResponse[36..<48])
        } else {
            #expect(resp[24..<44] == Self.hex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")[0..<20])
        }
        // Too little room: nothing written.
        let none = Self.sampleRequest.withUnsafeBytes { req in
            Self.password.withUnsafeBytes { pw in
                out.withUnsafeMutableBytes { o in StunWriter.bindingSuccess(to: req.baseAddress!, mapped: mapped, password: pw, into: o.baseAddress!, capacity: 10) }
            }
        }
        #expect(none == 0)
    }

    @Test(arguments: [
        ([UInt8](), StunParseError.tooShort),
        (Array(repeating: 0, count: 19), .tooShort),
        (hex("0001000021120000b7e7a701bc34d686fa87dfae"), .notStun),       // bad cookie
        (hex("c0010000" + "2112a442b7e7a701bc34d686fa87dfae"), .notStun),  // top bits set
        (hex("000100042112a442b7e7a701bc34d686fa87dfae"), .badLength),     // length beyond data
        (hex("000100042112a442b7e7a701bc34d686fa87dfae00060008"), .badAttribute),
        (hex("000100182112a442b7e7a701bc34d686fa87dfae0008000400000000" + "0006000400000000" + "0000000000000000"), .badAttribute),
    ] as [([UInt8], StunParseError)])
    func malformed(bytes: [UInt8], error: StunParseError) {
        #expect(throws: error) { try parse(bytes) }
    }

    @Test func attributeAfterIntegrityIsRejected() {
        // MESSAGE-INTEGRITY then USERNAME.
        var b = Self.hex("000100202112a442b7e7a701bc34d686fa87dfae00080014") + Array(repeating: 0, count: 20)
        b += Self.hex("00060004") + [0x61, 0x62, 0x63, 0x64]
        b[3] = UInt8(b.count - 20)
        #expect(throws: StunParseError.attributeAfterIntegrity) { try parse(b) }
    }

    @Test func crc32KnownValue() {
        let v = Array("123456789".utf8).withUnsafeBytes { Crc32.checksum($0.baseAddress!, count: 9) }
        #expect(v == 0xCBF4_3926)
    }

    @Test func randomInputNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let n = Int.random(in: 20...120, using: &rng) & ~3
            var b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            b[0] &= 0x3F
            b[2] = 0; b[3] = UInt8(n - 20)
            b[4] = 0x21; b[5] = 0x12; b[6] = 0xa4; b[7] = 0x42
            if let m = try? parse(b) {
                b.withUnsafeBytes { raw in
                    _ = m.checkFingerprint(raw.baseAddress!)
                    Self.password.withUnsafeBytes { pw in _ = m.checkIntegrity(raw.baseAddress!, key: pw) }
                }
            }
        }
    }
}
