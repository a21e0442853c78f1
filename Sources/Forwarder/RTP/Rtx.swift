#if canImport(Glibc)
import Glibc
#endif

/// RFC 4588 retransmission packets, rewritten in place in a packet buffer:
/// the original sequence number (OSN) leads the RTX payload, and the RTX
/// stream has its own SSRC, payload type and numbering.
package enum Rtx {
    /// Turns a received RTX packet back into the packet it repairs: the OSN
    /// becomes the sequence number, the media SSRC and payload type return.
    /// Returns the new size, or nil for a packet with no room for an OSN
    /// (padding-only probes are such packets).
    @inline(__always)
    static func unwrap(_ packet: UnsafeMutableRawPointer, size: Int, _ header: RtpHeader, mediaPayloadType: UInt8, mediaSsrc: UInt32) -> Int? {
        guard header.payloadLength >= 2 else { return nil }
        let start = header.payloadOffset
        let original = readUInt16(packet, start)
        memmove(packet + start, packet + start + 2, size - start - 2)
        RtpRewrite.setSequenceNumber(packet, original)
        RtpRewrite.setSsrc(packet, mediaSsrc)
        RtpRewrite.setPayloadType(packet, mediaPayloadType)
        return size - 2
    }

    /// Turns a packet into its RTX form, growing it by the OSN. Returns the
    /// new size, or 0 when `capacity` has no room for it.
    @inline(__always)
    package static func wrap(_ packet: UnsafeMutableRawPointer, size: Int, capacity: Int, _ header: RtpHeader, rtxPayloadType: UInt8, rtxSsrc: UInt32, rtxSequence: UInt16) -> Int {
        guard size + 2 <= capacity else { return 0 }
        let start = header.payloadOffset
        memmove(packet + start + 2, packet + start, size - start)
        packet.storeBytes(of: header.sequenceNumber.bigEndian, toByteOffset: start, as: UInt16.self)
        RtpRewrite.setSsrc(packet, rtxSsrc)
        RtpRewrite.setPayloadType(packet, rtxPayloadType)
        RtpRewrite.setSequenceNumber(packet, rtxSequence)
        return size + 2
    }
}
