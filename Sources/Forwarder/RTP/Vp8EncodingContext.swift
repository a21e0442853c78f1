/// Keeps a simulcast consumer's VP8 payload descriptors (RFC 7741) one
/// continuous stream across layer switches.
///
/// Each simulcast encoding numbers its pictures (picture id, 15 or 7 bits)
/// and its base temporal layer frames (TL0PICIDX, 8 bits) on its own. A
/// receiver's frame reference finder (libwebrtc's) tracks both across the
/// stream: after a switch the new layer's numbers jump, and frames that
/// follow the switching key frame are taken as old (dropped) or as
/// referring to frames it never saw (held back), so the picture freezes
/// until the next key frame. Rewriting both numbers so that the switching
/// key frame continues right after the last picture sent keeps every frame
/// decodable, as mediasoup's encoding context does.
///
/// A pure unit: it rewrites descriptors in place and remembers offsets.
package struct Vp8EncodingContext: Sendable {
    /// Offsets added to the producer's numbers (picture ids modulo 2^15).
    package private(set) var pictureIdOffset: UInt16 = 0
    package private(set) var tl0Offset: UInt8 = 0
    /// The newest numbers sent (valid once `started`).
    package private(set) var lastPictureId: UInt16 = 0
    package private(set) var lastTl0: UInt8 = 0
    package private(set) var started = false
    /// The next picture re-bases the offsets (set on a layer switch).
    private var syncPending = false

    package init() {}

    /// The next descriptor (a key frame's, on a switch) continues the
    /// numbering after the last one sent.
    package mutating func sync() { syncPending = true }

    /// Where the descriptor's fields are: offsets into the payload of the
    /// picture id (and whether it has 15 bits) and of TL0PICIDX, -1 when absent.
    struct Fields {
        var pictureId = -1
        var longPictureId = false
        var tl0 = -1
        /// The TID/Y/KEYIDX byte, when the T bit says TID is present.
        var temporal = -1
    }

    @inline(__always)
    static func fields(_ payload: UnsafeRawPointer, count: Int) -> Fields? {
        guard count >= 1 else { return nil }
        var f = Fields()
        guard payload.load(as: UInt8.self) & 0x80 != 0 else { return f } // no extension: nothing to rewrite
        guard count >= 2 else { return nil }
        let x = payload.load(fromByteOffset: 1, as: UInt8.self)
        var i = 2
        if x & 0x80 != 0 {
            guard count > i else { return nil }
            f.pictureId = i
            f.longPictureId = payload.load(fromByteOffset: i, as: UInt8.self) & 0x80 != 0
            i += f.longPictureId ? 2 : 1
        }
        if x & 0x40 != 0 {
            guard count > i else { return nil }
            f.tl0 = i
            i += 1
        }
        if x & 0x30 != 0 {
            guard count > i else { return nil }
            if x & 0x20 != 0 { f.temporal = i }
            i += 1
        }
        guard count >= i else { return nil }
        return f
    }

    /// A packet's temporal layer id and whether it starts its picture (S
    /// bit with partition 0); nil without temporal information or when the
    /// descriptor is malformed.
    @inline(__always)
    package static func temporalLayer(_ payload: UnsafeRawPointer, count: Int) -> (tid: UInt8, pictureStart: Bool)? {
        guard let f = fields(payload, count: count), f.temporal >= 0 else { return nil }
        let b0 = payload.load(as: UInt8.self)
        return (payload.load(fromByteOffset: f.temporal, as: UInt8.self) >> 6, b0 & 0x10 != 0 && b0 & 0x07 == 0)
    }

    /// A picture is not forwarded (a dropped temporal layer): the pictures
    /// after it are numbered one lower, so the endpoint sees no gap in the
    /// picture ids. Call for each of its packets; the first one counts.
    package mutating func dropPicture(_ payload: UnsafeRawPointer, count: Int) {
        guard let f = Self.fields(payload, count: count), f.pictureId >= 0 else { return }
        let pictureId = f.longPictureId ? readUInt16(payload, f.pictureId) & 0x7FFF : UInt16(payload.load(fromByteOffset: f.pictureId, as: UInt8.self) & 0x7F)
        guard !hasDropped || pictureId != lastDropped else { return }
        hasDropped = true
        lastDropped = pictureId
        pictureIdOffset = (pictureIdOffset &- 1) & 0x7FFF
    }

    private var lastDropped: UInt16 = 0
    private var hasDropped = false

    /// Rewrites the descriptor at the start of `payload` in place. Returns
    /// false when it is malformed (the packet should not be sent).
    @inline(__always)
    package mutating func rewrite(_ payload: UnsafeMutableRawPointer, count: Int) -> Bool {
        guard let f = Self.fields(payload, count: count) else { return false }
        var pictureId: UInt16 = 0
        if f.pictureId >= 0 {
            pictureId = f.longPictureId ? readUInt16(payload, f.pictureId) & 0x7FFF : UInt16(payload.load(fromByteOffset: f.pictureId, as: UInt8.self) & 0x7F)
        }
        let tl0: UInt8 = f.tl0 >= 0 ? payload.load(fromByteOffset: f.tl0, as: UInt8.self) : 0
        if syncPending {
            syncPending = false
            if started {
                pictureIdOffset = (lastPictureId &+ 1 &- pictureId) & 0x7FFF
                tl0Offset = lastTl0 &+ 1 &- tl0
            }
        }
        if f.pictureId >= 0 {
            // 7-bit picture ids wrap at 128: numbers compare in their own space.
            let mask: UInt16 = f.longPictureId ? 0x7FFF : 0x7F
            let out = (pictureId &+ pictureIdOffset) & mask
            if f.longPictureId {
                payload.storeBytes(of: (0x8000 | out).bigEndian, toByteOffset: f.pictureId, as: UInt16.self)
            } else {
                payload.storeBytes(of: UInt8(out), toByteOffset: f.pictureId, as: UInt8.self)
            }
            if !started || (out &- lastPictureId) & mask <= mask / 2 { lastPictureId = out }
        }
        if f.tl0 >= 0 {
            let out = tl0 &+ tl0Offset
            payload.storeBytes(of: out, toByteOffset: f.tl0, as: UInt8.self)
            if !started || out &- lastTl0 < 0x80 { lastTl0 = out }
        }
        started = true
        return true
    }
}
