import Testing
@testable import RingSFUForwarder
import RingSFUTestSupport

/// The MID rewrite on packets built by hand: in place when the new value
/// fits, a rebuilt block when it is longer, the element dropped when the
/// buffer has no room.
@Suite("MID rewriter")
struct MidRewriterTests {
    static let midId: UInt8 = 4

    static func mid(_ s: String) -> (InlineArray<16, UInt8>, Int) {
        var m = InlineArray<16, UInt8>(repeating: 0)
        for (i, b) in s.utf8.enumerated() { m[i] = b }
        return (m, s.utf8.count)
    }

    /// Rewrites and returns the packet's extensions (id -> value) and payload.
    static func rewrite(_ packet: [UInt8], to value: String, room: Int = 64) throws -> (exts: [UInt8: [UInt8]], payload: [UInt8], size: Int) {
        var buf = packet + Array(repeating: 0, count: room)
        let h = try buf.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: packet.count) }
        let (m, n) = mid(value)
        let size = buf.withUnsafeMutableBytes {
            MidRewriter.rewrite($0.baseAddress!, h, id: midId, mid: m, midLength: n, size: packet.count, capacity: packet.count + room)
        }
        let out = Array(buf[0..<size])
        let oh = try out.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: out.count) }
        var exts: [UInt8: [UInt8]] = [:]
        try out.withUnsafeBytes { raw in
            try RtpHeaderExtensions.forEach(UnsafeMutableRawPointer(mutating: raw.baseAddress!), oh) { id, offset, length in
                exts[id] = Array(out[offset..<(offset + length)])
            }
        }
        return (exts, Array(out[oh.payloadOffset..<(oh.payloadOffset + oh.payloadLength)]), size)
    }

    static let payload: [UInt8] = Array(100..<140)

    @Test func sameOrShorterIsWrittenInPlace() throws {
        let packet = makeRtp(pt: 96, seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [7, 7]), (Self.midId, Array("abc".utf8))])
        for value in ["xyz", "q"] {
            let r = try Self.rewrite(packet, to: value)
            #expect(r.size == packet.count, "no move")
            #expect(r.exts[Self.midId] == Array(value.utf8) && r.exts[1] == [7, 7])
            #expect(r.payload == Self.payload)
        }
    }

    @Test func longerRebuildsTheBlockAndMovesThePayload() throws {
        let packet = makeRtp(pt: 96, seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [7, 7]), (Self.midId, Array("0".utf8)), (9, [1])])
        let r = try Self.rewrite(packet, to: "camera-front")
        #expect(r.size > packet.count)
        #expect(r.exts[Self.midId] == Array("camera-front".utf8))
        #expect(r.exts[1] == [7, 7] && r.exts[9] == [1], "the other elements survive")
        #expect(r.payload == Self.payload)
    }

    @Test func noRoomDropsTheElement() throws {
        let packet = makeRtp(pt: 96, seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [7, 7]), (Self.midId, Array("0".utf8))])
        let r = try Self.rewrite(packet, to: "longer-mid-value", room: 0)
        #expect(r.size == packet.count)
        #expect(r.exts[Self.midId] == nil, "better no MID than a wrong one")
        #expect(r.exts[1] == [7, 7] && r.payload == Self.payload)
    }

    @Test func aPacketWithoutTheElementIsUntouched() throws {
        let packet = makeRtp(pt: 96, seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [7, 7])])
        let r = try Self.rewrite(packet, to: "m")
        #expect(r.size == packet.count && r.exts == [1: [7, 7]] && r.payload == Self.payload)
    }
}
