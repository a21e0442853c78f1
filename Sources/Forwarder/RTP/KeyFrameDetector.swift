/// Key frame detection per codec, from the RTP payload alone (the first
/// packet of a key frame is where a consumer may start, and what ends a key
/// frame request). Short or malformed payloads are "not a key frame".
package enum KeyFrameDetector {
    @inline(__always)
    package static func isKeyFrame(_ codec: KeyFrameCodec, _ payload: UnsafeRawPointer, count: Int) -> Bool {
        switch codec {
        case .vp8: Vp8PayloadDescriptor.isKeyFrame(payload, count: count)
        case .vp9: vp9(payload, count: count)
        case .h264: h264(payload, count: count)
        case .h265: h265(payload, count: count)
        case .av1: av1(payload, count: count)
        case .none: true
        }
    }

    @inline(__always)
    static func byte(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }

    /// VP9 (RFC 9628): P=0 (not inter-predicted) and B=1 (start of a frame),
    /// on the base spatial layer when layer indices are present.
    static func vp9(_ p: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 1 else { return false }
        let b0 = byte(p, 0)
        let interPicture = b0 & 0x40 != 0, layers = b0 & 0x20 != 0, begin = b0 & 0x08 != 0
        guard !interPicture, begin else { return false }
        guard layers else { return true }
        var i = 1
        if b0 & 0x80 != 0 { // I: picture id, 7 or 15 bits
            guard count > i else { return false }
            i += byte(p, i) & 0x80 != 0 ? 2 : 1
        }
        guard count > i else { return false }
        return byte(p, i) >> 1 & 0x07 == 0 // SID
    }

    /// H.264 (RFC 6184): an IDR slice or an SPS, alone, inside a STAP-A, or
    /// at the start of an FU-A.
    static func h264(_ p: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 1 else { return false }
        func key(_ type: UInt8) -> Bool { type == 5 || type == 7 }
        let type = byte(p, 0) & 0x1F
        switch type {
        case 24: // STAP-A: 16-bit sizes, then NAL units
            var i = 1
            while i + 2 < count {
                let size = Int(readUInt16(p, i))
                guard size > 0, i + 2 + size <= count else { return false }
                if key(byte(p, i + 2) & 0x1F) { return true }
                i += 2 + size
            }
            return false
        case 28: // FU-A: start bit and the fragmented unit's type
            guard count >= 2 else { return false }
            let fu = byte(p, 1)
            return fu & 0x80 != 0 && key(fu & 0x1F)
        default:
            return key(type)
        }
    }

    /// H.265 (RFC 7798): an IRAP picture (BLA/IDR/CRA, types 16-21) or a
    /// parameter set, alone, in an aggregation packet or starting a fragment.
    static func h265(_ p: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 2 else { return false }
        func key(_ type: UInt8) -> Bool { (16...21).contains(type) || (32...34).contains(type) }
        let type = (byte(p, 0) >> 1) & 0x3F
        switch type {
        case 48: // AP: 16-bit sizes after the 2-byte header
            var i = 2
            while i + 2 < count {
                let size = Int(readUInt16(p, i))
                guard size >= 2, i + 2 + size <= count else { return false }
                if key((byte(p, i + 2) >> 1) & 0x3F) { return true }
                i += 2 + size
            }
            return false
        case 49: // FU
            guard count >= 3 else { return false }
            let fu = byte(p, 2)
            return fu & 0x80 != 0 && key(fu & 0x3F)
        default:
            return key(type)
        }
    }

    /// AV1 (RTP payload format for AV1): the N bit of the aggregation header
    /// marks the first packet of a coded video sequence (a key frame), which
    /// must also not continue a previous OBU (Z=0).
    static func av1(_ p: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 2 else { return false }
        let h = byte(p, 0)
        return h & 0x08 != 0 && h & 0x80 == 0
    }
}
