/// VP8 RTP payload descriptor (RFC 7741), enough to tell a key frame's
/// first packet, which is where a consumer may start or restart.
package enum Vp8PayloadDescriptor {
    /// True when the payload starts partition 0 of a key frame.
    /// Bad or short input is simply "not a key frame".
    @inline(__always)
    package static func isKeyFrame(_ payload: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 1 else { return false }
        let b0 = payload.load(as: UInt8.self)
        let extended = b0 & 0x80 != 0
        let start = b0 & 0x10 != 0
        let partition = b0 & 0x07
        guard start, partition == 0 else { return false }
        var i = 1
        if extended {
            guard count > i else { return false }
            let x = payload.load(fromByteOffset: i, as: UInt8.self)
            i += 1
            if x & 0x80 != 0 { // I: picture id
                guard count > i else { return false }
                let m = payload.load(fromByteOffset: i, as: UInt8.self) & 0x80 != 0
                i += m ? 2 : 1
            }
            if x & 0x40 != 0 { i += 1 } // L: TL0PICIDX
            if x & 0x20 != 0 || x & 0x10 != 0 { i += 1 } // T/K share a byte
        }
        guard count > i else { return false }
        // VP8 payload header: P bit (inverse key frame flag) is bit 0.
        return payload.load(fromByteOffset: i, as: UInt8.self) & 0x01 == 0
    }
}
