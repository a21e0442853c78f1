#if canImport(Glibc)
import Glibc
#endif

/// RFC 8285 header extension elements: walking and id rewriting.
///
/// Rewriting is done in place. An element whose id maps to 0 is removed by
/// zeroing all of its bytes: a zero byte is padding in both the one-byte and
/// the two-byte form, so the block stays valid without moving the payload.
package enum RtpHeaderExtensions {
    /// Walks the elements of the extension block, calling
    /// `body(id, elementOffset, headerSize, dataLength)` for each one
    /// (padding skipped). Throws if an element runs past the block.
    @inline(__always)
    static func walk(
        _ base: UnsafeRawPointer, _ header: RtpHeader,
        _ body: (UInt8, Int, Int, Int) -> Void
    ) throws(RtpParseError) {
        guard let ext = header.extensionOffset else { return }
        let oneByte = header.hasOneByteExtensions
        guard oneByte || header.hasTwoByteExtensions else { return }
        let end = ext + 4 + header.extensionLength
        var i = ext + 4
        while i < end {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b == 0 { i += 1; continue }
            let id: UInt8, headerSize: Int, length: Int
            if oneByte {
                id = b >> 4
                if id == 15 { return } // reserved: stop parsing (RFC 8285)
                headerSize = 1
                length = Int(b & 0x0F) + 1
            } else {
                guard i + 2 <= end else { throw .badExtension }
                id = b
                headerSize = 2
                length = Int(base.load(fromByteOffset: i + 1, as: UInt8.self))
            }
            guard i + headerSize + length <= end else { throw .badExtension }
            body(id, i, headerSize, length)
            i += headerSize + length
        }
    }

    /// Calls `body(id, dataOffset, dataLength)` for each element.
    @inline(__always)
    package static func forEach(
        _ base: UnsafeRawPointer, _ header: RtpHeader,
        _ body: (UInt8, Int, Int) -> Void
    ) throws(RtpParseError) {
        try walk(base, header) { id, offset, headerSize, length in body(id, offset + headerSize, length) }
    }

    /// Rewrites every element id through `map` (index: old id, value: new id;
    /// 0 removes the element). Unknown forms are left untouched. The map is
    /// passed by pointer so that its 256 bytes are never copied per packet.
    /// `find`: a new id whose element's data offset is returned (-1: not
    /// present, or shorter than 2 bytes), so that a caller writing into one
    /// element walks the block once.
    @inline(__always)
    @discardableResult
    package static func remapIds(
        _ base: UnsafeMutableRawPointer, _ header: RtpHeader,
        _ map: UnsafePointer<ExtensionIdMap>, find: UInt8 = 0
    ) throws(RtpParseError) -> Int {
        let oneByte = header.hasOneByteExtensions
        var found = -1
        try walk(base, header) { id, offset, headerSize, length in
            let newId = map.pointee[id]
            if newId == 0 || (oneByte && newId > 14) {
                (base + offset).initializeMemory(as: UInt8.self, repeating: 0, count: headerSize + length)
                return
            }
            if newId != id {
                let b = base.load(fromByteOffset: offset, as: UInt8.self)
                base.storeBytes(of: oneByte ? (newId << 4) | (b & 0x0F) : newId, toByteOffset: offset, as: UInt8.self)
            }
            if newId == find, find != 0, length >= 2 { found = offset + headerSize }
        }
        return found
    }
}

/// A fixed 256-entry id translation table (old id -> new id, 0 = drop),
/// stored inline so that looking it up costs no indirection.
package struct ExtensionIdMap: Sendable {
    package var table: InlineArray<256, UInt8>

    /// Every id maps to 0: all extensions are removed.
    package init() { table = InlineArray(repeating: 0) }

    package init(pairs: [(UInt8, UInt8)]) {
        self.init()
        for (from, to) in pairs { table[Int(from)] = to }
    }

    @inline(__always)
    package subscript(_ id: UInt8) -> UInt8 { table[Int(id)] }
}

/// A 128-entry payload type table (old -> new, 0xFF = not negotiated).
package struct PayloadTypeMap: Sendable {
    package var table: InlineArray<128, UInt8>
    package static let none: UInt8 = 0xFF

    package init() { table = InlineArray(repeating: Self.none) }

    package init(pairs: [(UInt8, UInt8)]) {
        self.init()
        for (from, to) in pairs where from < 128 { table[Int(from)] = to }
    }

    @inline(__always)
    package subscript(_ pt: UInt8) -> UInt8 { table[Int(pt & 0x7F)] }
}

extension RtpHeaderExtensions {
    /// Convenience for tests and control-side code holding a map by value.
    /// The data length of the element whose data starts at `dataOffset`
    /// (as `remapIds(find:)` returned it): its header byte(s) precede it.
    @inline(__always)
    package static func dataLength(_ base: UnsafeRawPointer, _ header: RtpHeader, dataOffset: Int) -> Int {
        let b = base.load(fromByteOffset: dataOffset - 1, as: UInt8.self)
        return header.hasOneByteExtensions ? Int(b & 0x0F) + 1 : Int(b)
    }

    package static func remapIds(_ base: UnsafeMutableRawPointer, _ header: RtpHeader, _ map: ExtensionIdMap) throws(RtpParseError) {
        var copy = map
        _ = try withUnsafePointer(to: &copy) { (p) throws(RtpParseError) in try remapIds(base, header, p) }
    }
}

extension RtpHeaderExtensions {
    /// Adds a 2-byte element (`id`, `value`) to a packet that lacks it: into
    /// the block's trailing padding when there is room, else growing the
    /// block by a word (or creating one: one-byte form for ids up to 14,
    /// two-byte form above), the payload moving back. Returns the new size
    /// and the element data's offset, or nil when it cannot (a one-byte
    /// block and an id above 14, an unknown form, no capacity).
    package static func insert(_ out: UnsafeMutableRawPointer, _ header: RtpHeader, id: UInt8, value: UInt16,
                               size: Int, capacity: Int) -> (size: Int, offset: Int)? {
        guard id != 0, id != 15 || header.hasTwoByteExtensions else { return nil }
        guard let ext = header.extensionOffset else {
            // No block yet: 4 bytes of block header and one word of element.
            let at = header.payloadOffset
            guard size + 8 <= capacity, at <= size else { return nil }
            memmove(out + at + 8, out + at, size - at)
            let b0 = out.load(as: UInt8.self)
            out.storeBytes(of: b0 | 0x10, as: UInt8.self)
            let oneByte = id <= 14
            writeUInt16(out, at, oneByte ? 0xBEDE : 0x1000)
            writeUInt16(out, at + 2, 1)
            if oneByte {
                out.storeBytes(of: id << 4 | 1, toByteOffset: at + 4, as: UInt8.self)
                writeUInt16(out, at + 5, value)
                out.storeBytes(of: 0, toByteOffset: at + 7, as: UInt8.self)
                return (size + 8, at + 5)
            }
            out.storeBytes(of: id, toByteOffset: at + 4, as: UInt8.self)
            out.storeBytes(of: 2, toByteOffset: at + 5, as: UInt8.self)
            writeUInt16(out, at + 6, value)
            return (size + 8, at + 6)
        }
        let oneByte = header.hasOneByteExtensions
        guard oneByte ? id <= 14 : header.hasTwoByteExtensions else { return nil }
        // Where the last element ends: what follows is padding.
        var used = 0
        guard (try? walk(out, header, { _, offset, headerSize, length in used = offset + headerSize + length - (ext + 4) })) != nil else { return nil }
        let element = oneByte ? 3 : 4
        var length = header.extensionLength
        var newSize = size
        if used + element > length {
            let grow = (used + element - length + 3) / 4 * 4
            let payload = ext + 4 + length
            guard size + grow <= capacity, length + grow <= 0xFFFF * 4 else { return nil }
            memmove(out + payload + grow, out + payload, size - payload)
            (out + payload).initializeMemory(as: UInt8.self, repeating: 0, count: grow)
            length += grow
            newSize += grow
            writeUInt16(out, ext + 2, UInt16(length / 4))
        }
        let at = ext + 4 + used
        if oneByte {
            out.storeBytes(of: id << 4 | 1, toByteOffset: at, as: UInt8.self)
            writeUInt16(out, at + 1, value)
            return (newSize, at + 1)
        }
        out.storeBytes(of: id, toByteOffset: at, as: UInt8.self)
        out.storeBytes(of: 2, toByteOffset: at + 1, as: UInt8.self)
        writeUInt16(out, at + 2, value)
        return (newSize, at + 2)
    }
}
