import Testing
@testable import RingSFUForwarder

/// AV1 dependency descriptors built bit by bit: the layers of each frame
/// come from the last template structure, which may arrive in any packet.
@Suite("AV1 dependency descriptor")
struct DependencyDescriptorTests {
    /// Appends values most significant bit first.
    struct BitWriter {
        var bytes: [UInt8] = []
        var bits = 0
        mutating func put(_ value: Int, _ n: Int) {
            for i in stride(from: n - 1, through: 0, by: -1) {
                if bits % 8 == 0 { bytes.append(0) }
                if value >> i & 1 != 0 { bytes[bytes.count - 1] |= 0x80 >> UInt8(bits % 8) }
                bits += 1
            }
        }
    }

    /// A descriptor: the mandatory fields, and with `layers` a template
    /// structure listing them ((spatial, temporal) per template, in order).
    static func descriptor(template: Int, frame: Int = 1, start: Bool = true, end: Bool = true,
                           offset: Int = 0, layers: [(Int, Int)]? = nil) -> [UInt8] {
        var w = BitWriter()
        w.put(start ? 1 : 0, 1)
        w.put(end ? 1 : 0, 1)
        w.put(template, 6)
        w.put(frame, 16)
        guard let layers else { return w.bytes }
        w.put(0b10000, 5) // a structure; no active targets, no custom fields
        w.put(offset, 6)
        w.put(8, 5) // nine decode targets (not read)
        for (i, l) in layers.enumerated() {
            guard i + 1 < layers.count else { w.put(3, 2); break }
            let next = layers[i + 1]
            w.put(next == l ? 0 : next.0 == l.0 && next.1 == l.1 + 1 ? 1 : 2, 2)
        }
        w.put(0, 32) // stands for the rest of the structure
        return w.bytes
    }

    static let l3t3 = (0..<3).flatMap { s in (0..<3).map { t in (s, t) } }

    /// As the producer stage does: a picture's first packet is a key frame if the payload says so.
    static func parse(_ d: [UInt8], _ t: inout DependencyTemplates, key: Bool = false) -> SvcLayers? {
        guard var l = DependencyDescriptor.parse(d, count: d.count, templates: &t) else { return nil }
        if l.pictureStart { l.interPicture = !key }
        return l
    }

    @Test func layersComeFromTheLastStructure() throws {
        var t = DependencyTemplates()
        #expect(Self.parse(Self.descriptor(template: 0), &t) == nil, "no structure yet")
        let first = try #require(Self.parse(Self.descriptor(template: 0, layers: Self.l3t3), &t, key: true))
        #expect(t.count == 9)
        #expect(first.spatial == 0 && first.temporal == 0 && first.begin && first.end && !first.interPicture)
        let s1t2 = try #require(Self.parse(Self.descriptor(template: 5, start: false), &t))
        #expect(s1t2.spatial == 1 && s1t2.temporal == 2 && !s1t2.begin && s1t2.end && s1t2.interPicture)
        #expect(Self.parse(Self.descriptor(template: 8), &t)?.spatial == 2)
        #expect(Self.parse(Self.descriptor(template: 9), &t) == nil, "beyond the nine templates")
        // A key frame's payload makes no key frame of an upper layer's packet.
        #expect(Self.parse(Self.descriptor(template: 3), &t, key: true)?.interPicture == true)
    }

    @Test func templateIdsCountFromTheOffsetModulo64() {
        var t = DependencyTemplates()
        _ = Self.parse(Self.descriptor(template: 60, offset: 60, layers: Self.l3t3), &t)
        #expect(Self.parse(Self.descriptor(template: 60), &t).map { [$0.spatial, $0.temporal] } == [0, 0])
        // 2 is the seventh template: 2 + 64 - 60.
        #expect(Self.parse(Self.descriptor(template: 2), &t).map { [$0.spatial, $0.temporal] } == [2, 0])
        #expect(Self.parse(Self.descriptor(template: 59), &t) == nil)
        // A new structure replaces the old one.
        _ = Self.parse(Self.descriptor(template: 0, layers: [(0, 0), (0, 1)]), &t)
        #expect(t.count == 2)
        #expect(Self.parse(Self.descriptor(template: 1), &t)?.temporal == 1)
        #expect(Self.parse(Self.descriptor(template: 2), &t) == nil)
    }

    @Test func malformedDescriptorsAreRefusedAndKeepTheStructure() {
        var t = DependencyTemplates()
        _ = Self.parse(Self.descriptor(template: 0, layers: Self.l3t3), &t)
        #expect(Self.parse([0xC0, 0x00], &t) == nil, "shorter than the mandatory fields")
        // A structure cut short.
        let cut = Array(Self.descriptor(template: 0, layers: [(0, 0), (0, 1), (1, 0)]).prefix(5))
        #expect(Self.parse(cut, &t) == nil)
        #expect(t.count == 9, "the old structure stays")
        // 65 templates of one layer: more than a structure may hold.
        var w = BitWriter()
        w.put(0xC0, 8); w.put(1, 16); w.put(0b10000, 5); w.put(0, 6); w.put(0, 5)
        for _ in 0..<65 { w.put(0, 2) }
        #expect(Self.parse(w.bytes, &t) == nil)
        // Five spatial layers: more than AV1 has.
        var five = BitWriter()
        five.put(0xC0, 8); five.put(1, 16); five.put(0b10000, 5); five.put(0, 6); five.put(0, 5)
        for _ in 0..<5 { five.put(2, 2) }
        five.put(3, 2)
        #expect(Self.parse(five.bytes, &t) == nil)
        #expect(t.count == 9)
    }

    /// An AV1 L3T3 stream through an SVC consumer wanting spatial layer 1:
    /// layer 2 is dropped and the marker moves to layer 1's last packet.
    @Test func anSvcConsumerPicksLayersOfAnAv1Stream() {
        var t = DependencyTemplates()
        var s = SvcSelector(spatial: 1, temporal: 2)
        var forwarded: [(Int, Bool)] = []
        for picture in 0..<2 {
            for sid in 0..<3 {
                let d = picture == 0 && sid == 0 ? Self.descriptor(template: 0, layers: Self.l3t3) : Self.descriptor(template: sid * 3)
                let l = Self.parse(d, &t, key: picture == 0)!
                let decision = s.decide(l, keyFrame: l.pictureStart && !l.interPicture, marker: sid == 2)
                if decision.forward { forwarded.append((sid, decision.marker)) }
            }
        }
        #expect(forwarded.map(\.0) == [0, 1, 0, 1])
        #expect(forwarded.map(\.1) == [false, true, false, true])
    }
}
