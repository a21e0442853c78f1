import Testing
@testable import RingSFUForwarder
import RingSFUTestSupport

/// VP8 payload descriptor rewriting across simulcast layer switches.
@Suite("VP8 encoding context")
struct Vp8EncodingContextTests {
    static func descriptor(pictureId: UInt16, tl0: UInt8, tid: UInt8 = 0, key: Bool = false, start: Bool = true) -> [UInt8] {
        vp8Descriptor(pictureId: pictureId, tl0: tl0, tid: tid, key: key, start: start)
    }

    static func read(_ d: [UInt8]) -> (pictureId: UInt16, tl0: UInt8) { vp8Numbers(d) }

    func rewrite(_ c: inout Vp8EncodingContext, _ d: [UInt8]) -> [UInt8]? {
        var d = d
        let ok = d.withUnsafeMutableBytes { c.rewrite($0.baseAddress!, count: $0.count) }
        return ok ? d : nil
    }

    @Test func switchContinuesNumbering() throws {
        var c = Vp8EncodingContext()
        // Layer A: pictures 100..103, TL0 10, 10, 11, 11 (two temporal layers).
        for (i, tl0) in [UInt8(10), 10, 11, 11].enumerated() {
            let out = try #require(rewrite(&c, Self.descriptor(pictureId: 100 + UInt16(i), tl0: tl0, tid: UInt8(i % 2), key: i == 0)))
            #expect(Self.read(out) == (100 + UInt16(i), tl0), "untouched before any switch")
        }
        // Switch to layer B (pictures from 30000, TL0 from 200) on its key frame.
        c.sync()
        let key = try #require(rewrite(&c, Self.descriptor(pictureId: 30000, tl0: 200, key: true)))
        #expect(Self.read(key) == (104, 12))
        // Further packets of the same picture and the next pictures follow.
        let samePicture = try #require(rewrite(&c, Self.descriptor(pictureId: 30000, tl0: 200, start: false)))
        #expect(Self.read(samePicture) == (104, 12))
        let next = try #require(rewrite(&c, Self.descriptor(pictureId: 30001, tl0: 200, tid: 1)))
        #expect(Self.read(next) == (105, 12))
        let base = try #require(rewrite(&c, Self.descriptor(pictureId: 30002, tl0: 201)))
        #expect(Self.read(base) == (106, 13))
        // And back down to a layer numbered below the first (wrapping both).
        c.sync()
        let back = try #require(rewrite(&c, Self.descriptor(pictureId: 0x7FFF, tl0: 255, key: true)))
        #expect(Self.read(back) == (107, 14))
        let wrapped = try #require(rewrite(&c, Self.descriptor(pictureId: 0, tl0: 0)))
        #expect(Self.read(wrapped) == (108, 15))
        #expect(c.lastPictureId == 108 && c.lastTl0 == 15)
    }

    @Test func pictureIdWrapsAt15Bits() throws {
        var c = Vp8EncodingContext()
        _ = rewrite(&c, Self.descriptor(pictureId: 0x7FFE, tl0: 1, key: true))
        _ = rewrite(&c, Self.descriptor(pictureId: 0x7FFF, tl0: 1))
        c.sync()
        let out = try #require(rewrite(&c, Self.descriptor(pictureId: 500, tl0: 9, key: true)))
        #expect(Self.read(out) == (0, 2))
        // A reordered older picture does not move "the last one sent" back.
        _ = rewrite(&c, Self.descriptor(pictureId: 499, tl0: 8))
        #expect(c.lastPictureId == 0 && c.lastTl0 == 2)
    }

    @Test func shortPictureIdsStayShort() throws {
        var c = Vp8EncodingContext()
        // 7-bit picture id: X, I set; M clear.
        let seven: (UInt8) -> [UInt8] = { [0x90, 0x80, $0 & 0x7F, 0x00] }
        _ = rewrite(&c, seven(127))
        c.sync()
        let out = try #require(rewrite(&c, seven(40)))
        #expect(out[2] == 0 && out[3] == 0x00)
        let next = try #require(rewrite(&c, seven(41)))
        #expect(next[2] == 1)
    }

    @Test func descriptorsWithoutNumbersAndMalformedOnes() {
        var c = Vp8EncodingContext()
        // No X bit: nothing to rewrite, the packet goes out as it is.
        #expect(rewrite(&c, [0x10, 0x00, 0xAA]) == [0x10, 0x00, 0xAA])
        // X and I announced but the bytes are missing.
        #expect(rewrite(&c, [0x90]) == nil)
        #expect(rewrite(&c, [0x90, 0x80]) == nil)
        #expect(rewrite(&c, [0x90, 0xC0, 0x80, 0x01]) == nil)
        #expect(rewrite(&c, []) == nil)
    }
}
