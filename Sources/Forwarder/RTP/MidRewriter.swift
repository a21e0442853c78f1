#if canImport(Glibc)
import Glibc
#endif

/// The MID header extension of a packet leaving for a BUNDLEd endpoint:
/// the producer's value is replaced with the consumer's, in place.
enum MidRewriter {
    /// Puts the consumer's MID in the packet's MID element. A value that
    /// fits is written in place (a shorter one shrinks the element, the freed
    /// bytes becoming padding); a longer one rebuilds the extension block
    /// (one- or two-byte form) with room for it and moves the payload back.
    /// Returns the size.
    @inline(__always)
    static func rewrite(_ out: UnsafeMutableRawPointer, _ header: RtpHeader, id: UInt8, mid: InlineArray<16, UInt8>, midLength: Int,
                        size: Int, capacity: Int) -> Int {
        let oneByte = header.hasOneByteExtensions
        var tooSmall = false
        try? RtpHeaderExtensions.walk(out, header) { elementId, offset, headerSize, length in
            guard elementId == id else { return }
            if midLength <= length && (oneByte ? midLength >= 1 && midLength <= 16 : midLength <= 255) {
                if oneByte {
                    out.storeBytes(of: (id << 4) | UInt8(midLength - 1), toByteOffset: offset, as: UInt8.self)
                } else {
                    out.storeBytes(of: UInt8(midLength), toByteOffset: offset + 1, as: UInt8.self)
                }
                for i in 0..<midLength { out.storeBytes(of: mid[i], toByteOffset: offset + headerSize + i, as: UInt8.self) }
                if length > midLength {
                    (out + offset + headerSize + midLength).initializeMemory(as: UInt8.self, repeating: 0, count: length - midLength)
                }
            } else {
                tooSmall = true
            }
        }
        guard tooSmall else { return size }
        guard let ext = header.extensionOffset, oneByte ? midLength <= 16 : midLength <= 255 else { return dropElement(out, header, id, size: size) }
        // Rebuild the block in the same form: every element as it is, the
        // MID with our value.
        var block = InlineArray<512, UInt8>(repeating: 0)
        var n = 0
        var fits = true
        try? RtpHeaderExtensions.walk(out, header) { elementId, offset, headerSize, length in
            let valueLength = elementId == id ? midLength : length
            guard n + headerSize + valueLength <= 508 else { fits = false; return }
            if oneByte {
                block[n] = (elementId << 4) | UInt8(valueLength - 1)
            } else {
                block[n] = elementId
                block[n + 1] = UInt8(valueLength)
            }
            for i in 0..<valueLength {
                block[n + headerSize + i] = elementId == id ? mid[i] : out.load(fromByteOffset: offset + headerSize + i, as: UInt8.self)
            }
            n += headerSize + valueLength
        }
        while n % 4 != 0 { block[n] = 0; n += 1 }
        let oldLength = header.extensionLength
        let delta = n - oldLength
        let payloadStart = ext + 4 + oldLength
        guard fits, delta >= 0, size + delta <= capacity else {
            return dropElement(out, header, id, size: size)
        }
        if delta > 0 { memmove(out + payloadStart + delta, out + payloadStart, size - payloadStart) }
        for i in 0..<n { out.storeBytes(of: block[i], toByteOffset: ext + 4 + i, as: UInt8.self) }
        writeUInt16(out, ext + 2, UInt16(n / 4))
        return size + delta
    }

    /// Removes one extension element by zeroing it (valid padding).
    static func dropElement(_ out: UnsafeMutableRawPointer, _ header: RtpHeader, _ id: UInt8, size: Int) -> Int {
        try? RtpHeaderExtensions.walk(out, header) { elementId, offset, headerSize, length in
            if elementId == id { (out + offset).initializeMemory(as: UInt8.self, repeating: 0, count: headerSize + length) }
        }
        return size
    }
}
