import Testing
@testable import RingSFUForwarder
import RingSFUTestSupport

/// VP8 temporal layer dropping on hand-made descriptors: down at the next
/// picture, up at the next base-layer picture, picture ids kept continuous.
@Suite("Temporal layers")
struct TemporalLayerFilterTests {
    /// The usual three-layer pattern: 0 2 1 2 0 2 1 2 ...
    static let pattern: [UInt8] = [0, 2, 1, 2]

    @Test func downAtOncePicturesAboveTheTargetDropped() {
        var f = TemporalLayerFilter(target: 0)
        let forwarded = (0..<8).map { i in f.forward(tid: Self.pattern[i % 4], pictureStart: true).forward }
        #expect(forwarded == [true, false, false, false, true, false, false, false])
        #expect(f.current == 0 && f.rewriting)
    }

    @Test func upOnlyAtABaseLayerPicture() {
        var f = TemporalLayerFilter(target: 0)
        _ = f.forward(tid: 0, pictureStart: true)
        _ = f.forward(tid: 2, pictureStart: true)
        f.target = 2
        // The TL1 picture refers to a TL0 one the endpoint has, but the TL2
        // one after it may refer to the TL1 one dropped before: wait for TL0.
        #expect(f.forward(tid: 1, pictureStart: true) == (false, false))
        #expect(f.forward(tid: 2, pictureStart: true) == (false, false))
        #expect(f.forward(tid: 0, pictureStart: true) == (true, true))
        #expect(f.forward(tid: 2, pictureStart: true) == (true, false))
        // A later packet of a picture never changes the decision.
        f.target = 0
        #expect(f.forward(tid: 2, pictureStart: false) == (true, false))
        #expect(f.forward(tid: 1, pictureStart: true) == (false, true))
    }

    @Test func droppedPicturesLeaveNoGapInPictureIds() {
        var context = Vp8EncodingContext()
        var ids: [UInt16] = []
        for picture in 0..<12 {
            var d = vp8Descriptor(pictureId: UInt16(32760 + picture) & 0x7FFF, tl0: 5, tid: Self.pattern[picture % 4])
            d.withUnsafeMutableBytes { raw in
                if Self.pattern[picture % 4] > 0 {
                    context.dropPicture(raw.baseAddress!, count: raw.count)
                    context.dropPicture(raw.baseAddress!, count: raw.count) // a second packet of it
                } else {
                    _ = context.rewrite(raw.baseAddress!, count: raw.count)
                    ids.append(vp8Numbers(Array(raw)).pictureId)
                }
            }
        }
        #expect(ids == [32760, 32761, 32762])
        let withTid: [UInt8] = [0x90, 0xE0, 0x80, 0x01, 0x05, 0x80, 0x00, 0xAA]
        #expect(Vp8EncodingContext.temporalLayer(withTid, count: withTid.count).map { $0 == (2, true) } == true)
        // Without the T bit there is no temporal information.
        let without: [UInt8] = [0x90, 0xC0, 0x80, 0x01, 0x05, 0x00, 0xAA]
        #expect(Vp8EncodingContext.temporalLayer(without, count: without.count) == nil)
    }
}
