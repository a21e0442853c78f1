/// The parts of the AV1 dependency descriptor (the RTP header extension of
/// the AV1 RTP payload specification, appendix A) that an SVC consumer
/// decides on. AV1's payload says nothing about layers; the descriptor
/// names a *template* per frame, and the templates (with their spatial and
/// temporal ids) arrive now and then, usually with key frames, as a
/// template structure. The structure is kept per stream (`DependencyTemplates`).
package enum DependencyDescriptor {
    /// A descriptor's layer fields, nil when it is malformed, too short, or
    /// names a template no structure seen so far defines. A structure in the
    /// descriptor replaces `templates` first (it describes this very frame).
    /// The descriptor does not say whether a frame is a key frame: the
    /// result has `interPicture` set, for the caller to clear from the
    /// payload (AV1's N bit, an H264 IDR) on a picture's first packet.
    package static func parse(_ p: UnsafeRawPointer, count: Int, templates: inout DependencyTemplates) -> SvcLayers? {
        var r = BitReader(p, count: count)
        guard count >= 3, let b0 = r.read(8), r.read(16) != nil else { return nil }
        let templateId = UInt8(b0 & 0x3F)
        if count > 3 {
            guard let flags = r.read(5) else { return nil }
            if flags & 0x10 != 0 { // template_dependency_structure_present_flag
                guard let t = DependencyTemplates.parse(&r) else { return nil }
                templates = t
            }
        }
        guard let (spatial, temporal) = templates.layer(templateId) else { return nil }
        return SvcLayers(spatial: spatial, temporal: temporal, begin: b0 & 0x80 != 0, end: b0 & 0x40 != 0,
                         interPicture: true, switchingUp: false)
    }
}

/// The spatial and temporal id of each template of the last template
/// structure a stream sent (at most 64 templates), inline: no allocation.
package struct DependencyTemplates: Sendable {
    /// `spatial << 4 | temporal` per template index.
    private var layers = InlineArray<64, UInt8>(repeating: 0)
    /// template_id_offset: template ids are counted from here, modulo 64.
    private var offset: UInt8 = 0
    /// 0: no structure seen yet.
    package private(set) var count: UInt8 = 0

    package init() {}

    /// The layers of the template `id` names, nil if there is no such template.
    package func layer(_ id: UInt8) -> (spatial: UInt8, temporal: UInt8)? {
        let index = Int((id &+ 64 &- offset) & 0x3F)
        guard index < Int(count) else { return nil }
        let l = layers[index]
        return (l >> 4, l & 0x0F)
    }

    /// template_id_offset, dt_cnt_minus_one, then template_layers(): a 2-bit
    /// next_layer_idc after each template (0 same layers, 1 next temporal,
    /// 2 next spatial, 3 end). The rest of the structure (DTIs, frame
    /// diffs, chains, resolutions) is not needed to pick layers.
    static func parse(_ r: inout BitReader) -> DependencyTemplates? {
        guard let offset = r.read(6), r.read(5) != nil else { return nil }
        var t = DependencyTemplates()
        t.offset = UInt8(offset)
        var spatial: UInt8 = 0, temporal: UInt8 = 0
        var n = 0
        while true {
            // More than 64 templates, or more than 4 spatial / 8 temporal
            // layers (what AV1 allows), is a malformed structure.
            guard n < 64, spatial < 4, temporal < 8, let next = r.read(2) else { return nil }
            t.layers[n] = spatial << 4 | temporal
            n += 1
            switch next {
            case 1: temporal += 1
            case 2: temporal = 0; spatial += 1
            case 3: t.count = UInt8(n); return t
            default: break
            }
        }
    }
}

/// Reads bits most significant first, refusing to read past `count` bytes.
struct BitReader {
    private let base: UnsafeRawPointer
    private let bits: Int
    private var position = 0

    init(_ base: UnsafeRawPointer, count: Int) {
        self.base = base
        bits = max(0, count) * 8
    }

    /// The next `n` (at most 32) bits, nil past the end.
    mutating func read(_ n: Int) -> UInt32? {
        guard n <= 32, position + n <= bits else { return nil }
        var v: UInt32 = 0
        for _ in 0..<n {
            let byte = base.load(fromByteOffset: position >> 3, as: UInt8.self)
            v = v << 1 | UInt32(byte >> (7 - UInt8(position & 7)) & 1)
            position += 1
        }
        return v
    }
}
