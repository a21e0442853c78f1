/// What a datagram on a media socket carries (RFC 7983 first-byte ranges,
/// RFC 5761 payload-type split between RTP and RTCP).
package enum PacketClass: Equatable, Sendable {
    case stun, dtls, rtp, rtcp, unknown

    @inline(__always)
    package static func classify(_ base: UnsafeRawPointer, count: Int) -> PacketClass {
        guard count > 0 else { return .unknown }
        let b0 = base.load(as: UInt8.self)
        switch b0 {
        case 0...3: return .stun
        case 20...63: return .dtls
        case 128...191:
            guard count >= 2 else { return .unknown }
            // RTCP packet types 192-223 land on RTP payload types 64-95.
            let pt = base.load(fromByteOffset: 1, as: UInt8.self) & 0x7F
            return (64...95).contains(pt) ? .rtcp : .rtp
        default: return .unknown
        }
    }
}
