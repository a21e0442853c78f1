import Testing
@testable import RingSFUForwarder
import RingSFUTestSupport

/// RFC 4588 wrapping and unwrapping in place.
@Suite("RTX")
struct RtxTests {
    static func header(_ b: [UInt8]) throws -> RtpHeader {
        try b.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
    }

    @Test(arguments: [false, true])
    func wrapThenUnwrapRestoresThePacket(extensions: Bool) throws {
        let original = makeRtp(pt: 96, seq: 4242, ts: 90_000, ssrc: 0xAABB_CCDD, payload: Array(0..<50),
                               extensions: extensions ? [(1, [9, 9]), (3, [7])] : [])
        var buf = original + Array(repeating: 0, count: 16)
        let h = try Self.header(original)
        let wrapped = buf.withUnsafeMutableBytes {
            Rtx.wrap($0.baseAddress!, size: original.count, capacity: $0.count, h, rtxPayloadType: 97, rtxSsrc: 0x1234, rtxSequence: 7)
        }
        #expect(wrapped == original.count + 2)
        let rh = try Self.header(Array(buf[0..<wrapped]))
        #expect(rh.ssrc == 0x1234 && rh.payloadType == 97 && rh.sequenceNumber == 7 && rh.timestamp == 90_000)
        #expect(buf[rh.payloadOffset] == 0x10 && buf[rh.payloadOffset + 1] == 0x92, "the OSN leads the payload")
        let unwrapped = buf.withUnsafeMutableBytes {
            Rtx.unwrap($0.baseAddress!, size: wrapped, rh, mediaPayloadType: 96, mediaSsrc: 0xAABB_CCDD)
        }
        #expect(unwrapped == original.count)
        #expect(Array(buf[0..<original.count]) == original)
    }

    @Test func noRoomNoWrap() throws {
        let original = makeRtp(pt: 96, seq: 1, ssrc: 1, payload: [1, 2, 3])
        var buf = original
        let h = try Self.header(original)
        let n = buf.withUnsafeMutableBytes { Rtx.wrap($0.baseAddress!, size: original.count, capacity: original.count + 1, h, rtxPayloadType: 97, rtxSsrc: 2, rtxSequence: 3) }
        #expect(n == 0)
        #expect(buf == original, "untouched")
    }

    @Test func anRtxPacketWithoutAnOsnIsRefused() throws {
        // A padding-only probe on the RTX stream: one byte of payload at most.
        for payload in [[], [0x42]] as [[UInt8]] {
            var buf = makeRtp(pt: 97, seq: 1, ssrc: 2, payload: payload)
            let h = try Self.header(buf)
            let n = buf.withUnsafeMutableBytes { Rtx.unwrap($0.baseAddress!, size: $0.count, h, mediaPayloadType: 96, mediaSsrc: 1) }
            #expect(n == nil)
        }
    }
}
