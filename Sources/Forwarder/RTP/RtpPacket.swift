/// Why a datagram is not a usable RTP packet. Every parser in the forwarder
/// reports bad input with a value like this one; none of them traps.
package enum RtpParseError: Error, Equatable, Sendable {
    case tooShort
    case badVersion
    case csrcBeyondPacket
    case extensionBeyondPacket
    case badPadding
    case badExtension
}

/// Where the parts of an RTP packet (RFC 3550) sit inside its buffer.
/// Offsets only, so it can be kept while the bytes are rewritten in place.
package struct RtpHeader: Equatable, Sendable {
    package var marker: Bool
    package var payloadType: UInt8
    package var sequenceNumber: UInt16
    package var timestamp: UInt32
    package var ssrc: UInt32
    package var csrcCount: Int
    /// Offset of the extension block's 4-byte header, or nil.
    package var extensionOffset: Int?
    /// The 16-bit "defined by profile" field (0xBEDE: one-byte form,
    /// 0x100x: two-byte form, RFC 8285).
    package var extensionProfile: UInt16
    /// Length in bytes of the extension data (after its 4-byte header).
    package var extensionLength: Int
    package var payloadOffset: Int
    package var payloadLength: Int
    package var paddingLength: Int

    package static let minimumSize = 12

    /// Parses the fixed header, CSRCs, header extension and padding.
    /// - Returns: the layout, or throws for anything out of bounds.
    @inline(__always)
    package static func parse(_ base: UnsafeRawPointer, count: Int) throws(RtpParseError) -> RtpHeader {
        guard count >= minimumSize else { throw .tooShort }
        let b0 = base.load(as: UInt8.self)
        guard b0 >> 6 == 2 else { throw .badVersion }
        let hasPadding = b0 & 0x20 != 0
        let hasExtension = b0 & 0x10 != 0
        let cc = Int(b0 & 0x0F)
        let b1 = base.load(fromByteOffset: 1, as: UInt8.self)
        var offset = minimumSize + cc * 4
        guard offset <= count else { throw .csrcBeyondPacket }
        var extOffset: Int? = nil
        var extProfile: UInt16 = 0
        var extLength = 0
        if hasExtension {
            guard offset + 4 <= count else { throw .extensionBeyondPacket }
            extProfile = readUInt16(base, offset)
            extLength = Int(readUInt16(base, offset + 2)) * 4
            guard offset + 4 + extLength <= count else { throw .extensionBeyondPacket }
            extOffset = offset
            offset += 4 + extLength
        }
        var padding = 0
        if hasPadding {
            guard count > offset else { throw .badPadding }
            padding = Int(base.load(fromByteOffset: count - 1, as: UInt8.self))
            guard padding > 0, offset + padding <= count else { throw .badPadding }
        }
        return RtpHeader(
            marker: b1 & 0x80 != 0,
            payloadType: b1 & 0x7F,
            sequenceNumber: readUInt16(base, 2),
            timestamp: readUInt32(base, 4),
            ssrc: readUInt32(base, 8),
            csrcCount: cc,
            extensionOffset: extOffset,
            extensionProfile: extProfile,
            extensionLength: extLength,
            payloadOffset: offset,
            payloadLength: count - offset - padding,
            paddingLength: padding
        )
    }

    package var hasOneByteExtensions: Bool { extensionOffset != nil && extensionProfile == 0xBEDE }
    package var hasTwoByteExtensions: Bool { extensionOffset != nil && extensionProfile & 0xFFF0 == 0x1000 }
}

/// Writes of the fields a consumer rewrites. All offsets are fixed-header
/// offsets, always inside the 12 bytes that `parse` has checked.
package enum RtpRewrite {
    @inline(__always)
    package static func setPayloadType(_ base: UnsafeMutableRawPointer, _ pt: UInt8) {
        let b1 = base.load(fromByteOffset: 1, as: UInt8.self)
        base.storeBytes(of: (b1 & 0x80) | (pt & 0x7F), toByteOffset: 1, as: UInt8.self)
    }
    @inline(__always)
    package static func setMarker(_ base: UnsafeMutableRawPointer, _ marker: Bool) {
        let b1 = base.load(fromByteOffset: 1, as: UInt8.self)
        base.storeBytes(of: marker ? b1 | 0x80 : b1 & 0x7F, toByteOffset: 1, as: UInt8.self)
    }
    @inline(__always)
    package static func setSequenceNumber(_ base: UnsafeMutableRawPointer, _ seq: UInt16) {
        writeUInt16(base, 2, seq)
    }
    @inline(__always)
    package static func setTimestamp(_ base: UnsafeMutableRawPointer, _ ts: UInt32) {
        writeUInt32(base, 4, ts)
    }
    @inline(__always)
    package static func setSsrc(_ base: UnsafeMutableRawPointer, _ ssrc: UInt32) {
        writeUInt32(base, 8, ssrc)
    }
}

@inline(__always)
package func readUInt16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}
@inline(__always)
package func readUInt32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}
@inline(__always)
package func writeUInt16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt16) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self)
}
@inline(__always)
package func writeUInt32(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt32) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
}
