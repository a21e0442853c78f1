import Testing
@testable import RingSFUForwarder
import RingSFUTestSupport

/// Adding the transport-wide element to packets whose publisher did not
/// negotiate it: into the block's padding, a grown block or a new one,
/// the payload (and RTP padding) intact.
@Suite("Header extension insertion")
struct ExtensionInsertTests {
    static let payload: [UInt8] = Array(100..<140)

    /// Inserts and returns the packet's extensions (id -> value), payload and growth.
    static func insert(_ packet: [UInt8], id: UInt8, room: Int = 16) throws -> (exts: [UInt8: [UInt8]], payload: [UInt8], grew: Int)? {
        var buf = packet + Array(repeating: 0, count: room)
        let h = try buf.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: packet.count) }
        let result = buf.withUnsafeMutableBytes {
            RtpHeaderExtensions.insert($0.baseAddress!, h, id: id, value: 0xBEEF, size: packet.count, capacity: packet.count + room)
        }
        guard let (size, offset) = result else { return nil }
        let out = Array(buf[0..<size])
        #expect(out[offset] == 0xBE && out[offset + 1] == 0xEF, "the offset returned is the value's")
        let oh = try out.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: out.count) }
        var exts: [UInt8: [UInt8]] = [:]
        try out.withUnsafeBytes { raw in
            try RtpHeaderExtensions.forEach(UnsafeMutableRawPointer(mutating: raw.baseAddress!), oh) { id, offset, length in
                exts[id] = Array(out[offset..<(offset + length)])
            }
        }
        return (exts, Array(out[oh.payloadOffset..<(oh.payloadOffset + oh.payloadLength)]), size - packet.count)
    }

    @Test func aPacketWithoutABlockGetsOne() throws {
        let r = try #require(try Self.insert(makeRtp(seq: 1, ssrc: 1, payload: Self.payload), id: 5))
        #expect(r.exts == [5: [0xBE, 0xEF]] && r.payload == Self.payload && r.grew == 8)
        // Ids above 14 need the two-byte form.
        let two = try #require(try Self.insert(makeRtp(seq: 1, ssrc: 1, payload: Self.payload), id: 20))
        #expect(two.exts == [20: [0xBE, 0xEF]] && two.payload == Self.payload && two.grew == 8)
    }

    @Test func theBlocksPaddingIsUsedFirstThenItGrows() throws {
        // One 1-byte element (2 bytes) + 2 bytes of padding: 3 are needed, so it grows a word.
        let grown = try #require(try Self.insert(makeRtp(seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [9])]), id: 5))
        #expect(grown.exts == [1: [9], 5: [0xBE, 0xEF]] && grown.payload == Self.payload && grown.grew == 4)
        // A 4-byte element + 3 bytes of padding: fits in place.
        let inPlace = try #require(try Self.insert(makeRtp(seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [1, 2, 3, 4])]), id: 5))
        #expect(inPlace.exts == [1: [1, 2, 3, 4], 5: [0xBE, 0xEF]] && inPlace.payload == Self.payload && inPlace.grew == 0)
    }

    @Test func rtpPaddingStaysAtTheEnd() throws {
        var packet = makeRtp(seq: 1, ssrc: 1, payload: Self.payload) + [0, 0, 3]
        packet[0] |= 0x20
        let r = try #require(try Self.insert(packet, id: 5))
        #expect(r.payload == Self.payload && r.exts == [5: [0xBE, 0xEF]])
    }

    @Test func impossibleInsertionsChangeNothing() throws {
        // A one-byte block cannot take id 15 or above; no room in the buffer.
        let oneByte = makeRtp(seq: 1, ssrc: 1, payload: Self.payload, extensions: [(1, [9])])
        #expect(try Self.insert(oneByte, id: 15) == nil)
        #expect(try Self.insert(oneByte, id: 20) == nil)
        #expect(try Self.insert(makeRtp(seq: 1, ssrc: 1, payload: Self.payload), id: 5, room: 4) == nil)
    }
}
