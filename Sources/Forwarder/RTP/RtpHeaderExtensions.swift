/// RFC 8285 header extension elements: walking and id rewriting.
///
/// Rewriting is done in place. An element whose id maps to 0 is removed by
/// zeroing all of its bytes: a zero byte is padding in both the one-byte and
/// the two-byte form, so the block stays valid without moving the payload.
package enum RtpHeaderExtensions {
    /// Calls `body(id, dataOffset, dataLength)` for each element.
    /// Throws if an element runs past the extension block.
    @inline(__always)
    package static func forEach(
        _ base: UnsafeRawPointer, _ header: RtpHeader,
        _ body: (UInt8, Int, Int) -> Void
    ) throws(RtpParseError) {
        guard let ext = header.extensionOffset else { return }
        let start = ext + 4
        let end = start + header.extensionLength
        var i = start
        if header.hasOneByteExtensions {
            while i < end {
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                if b == 0 { i += 1; continue }
                let id = b >> 4
                if id == 15 { return }
                let len = Int(b & 0x0F) + 1
                guard i + 1 + len <= end else { throw .badExtension }
                body(id, i + 1, len)
                i += 1 + len
            }
        } else if header.hasTwoByteExtensions {
            while i < end {
                let id = base.load(fromByteOffset: i, as: UInt8.self)
                if id == 0 { i += 1; continue }
                guard i + 2 <= end else { throw .badExtension }
                let len = Int(base.load(fromByteOffset: i + 1, as: UInt8.self))
                guard i + 2 + len <= end else { throw .badExtension }
                body(id, i + 2, len)
                i += 2 + len
            }
        }
    }

    /// Rewrites every element id through `map` (index: old id, value: new id;
    /// 0 removes the element). Unknown forms are left untouched.
    @inline(__always)
    package static func remapIds(
        _ base: UnsafeMutableRawPointer, _ header: RtpHeader,
        _ map: borrowing ExtensionIdMap
    ) throws(RtpParseError) {
        guard let ext = header.extensionOffset else { return }
        let start = ext + 4
        let end = start + header.extensionLength
        var i = start
        if header.hasOneByteExtensions {
            while i < end {
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                if b == 0 { i += 1; continue }
                let id = b >> 4
                if id == 15 { return }
                let len = Int(b & 0x0F) + 1
                guard i + 1 + len <= end else { throw .badExtension }
                let newId = map[id]
                if newId == 0 || newId > 14 {
                    (base + i).initializeMemory(as: UInt8.self, repeating: 0, count: 1 + len)
                } else if newId != id {
                    base.storeBytes(of: (newId << 4) | (b & 0x0F), toByteOffset: i, as: UInt8.self)
                }
                i += 1 + len
            }
        } else if header.hasTwoByteExtensions {
            while i < end {
                let id = base.load(fromByteOffset: i, as: UInt8.self)
                if id == 0 { i += 1; continue }
                guard i + 2 <= end else { throw .badExtension }
                let len = Int(base.load(fromByteOffset: i + 1, as: UInt8.self))
                guard i + 2 + len <= end else { throw .badExtension }
                let newId = map[id]
                if newId == 0 {
                    (base + i).initializeMemory(as: UInt8.self, repeating: 0, count: 2 + len)
                } else if newId != id {
                    base.storeBytes(of: newId, toByteOffset: i, as: UInt8.self)
                }
                i += 2 + len
            }
        }
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
