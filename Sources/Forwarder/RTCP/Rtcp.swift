/// RTCP (RFC 3550, RFC 4585, RFC 5104, RFC 5506, draft-alvestrand-rmcat-remb,
/// draft-holmer-rmcat-transport-wide-cc-extensions): bounds-checked views
/// over received bytes and builders into caller-provided memory. Nothing here
/// allocates; the forwarder thread parses and builds RTCP with these.

package enum RtcpError: Error, Sendable, Equatable {
    case tooShort
    case badVersion
    /// A length field points past the end of the buffer (or below a minimum).
    case badLength
    /// A packet's body is shorter than its type requires.
    case truncated
    case badPadding
}

package enum RtcpType {
    package static let sr: UInt8 = 200
    package static let rr: UInt8 = 201
    package static let sdes: UInt8 = 202
    package static let bye: UInt8 = 203
    package static let app: UInt8 = 204
    package static let rtpfb: UInt8 = 205
    package static let psfb: UInt8 = 206
}

package enum RtcpFormat {
    /// RTPFB
    package static let nack: UInt8 = 1
    package static let transportCc: UInt8 = 15
    /// PSFB
    package static let pli: UInt8 = 1
    package static let fir: UInt8 = 4
    package static let afb: UInt8 = 15
}

/// One packet of a (possibly compound, possibly reduced-size) RTCP packet.
package struct RtcpView {
    package let base: UnsafeRawPointer
    /// Offset of this packet's header in `base`, and its length in bytes
    /// (header included, padding excluded).
    package let offset: Int
    package let length: Int
    package let type: UInt8
    /// Reception report count, SDES chunk count, BYE SSRC count, APP
    /// subtype or feedback message type (FMT), by packet type.
    package let count: UInt8

    @inline(__always) package func u8(_ at: Int) -> UInt8 { base.load(fromByteOffset: offset + at, as: UInt8.self) }
    @inline(__always) package func u16(_ at: Int) -> UInt16 { readUInt16(base, offset + at) }
    @inline(__always) package func u32(_ at: Int) -> UInt32 { readUInt32(base, offset + at) }

    /// The first SSRC after the header (sender of SR/RR/feedback, APP, first SDES chunk / BYE).
    package var senderSsrc: UInt32? { length >= 8 ? u32(4) : nil }
}

package enum Rtcp {
    /// Walks every packet of a compound packet. Throws on the first
    /// malformed header; `body` sees only packets whose bounds are valid.
    package static func forEach(_ p: UnsafeRawPointer, count: Int, _ body: (RtcpView) throws(RtcpError) -> Void) throws(RtcpError) {
        guard count >= 4 else { throw .tooShort }
        var offset = 0
        while offset < count {
            guard count - offset >= 4 else { throw .tooShort }
            let b0 = p.load(fromByteOffset: offset, as: UInt8.self)
            guard b0 >> 6 == 2 else { throw .badVersion }
            let type = p.load(fromByteOffset: offset + 1, as: UInt8.self)
            let total = (Int(readUInt16(p, offset + 2)) + 1) * 4
            guard total <= count - offset else { throw .badLength }
            var length = total
            if b0 & 0x20 != 0 {
                // Padding only on the last packet; its last byte counts it.
                guard offset + total == count else { throw .badPadding }
                let pad = Int(p.load(fromByteOffset: offset + total - 1, as: UInt8.self))
                guard pad >= 1, pad <= total - 4 else { throw .badPadding }
                length = total - pad
            }
            try body(RtcpView(base: p, offset: offset, length: length, type: type, count: b0 & 0x1F))
            offset += total
        }
    }

    // MARK: - Typed reads

    package struct ReportBlock: Sendable, Equatable, Codable {
        package var ssrc: UInt32
        package var fractionLost: UInt8
        /// Cumulative number of packets lost (24-bit signed).
        package var totalLost: Int32
        package var highestSequence: UInt32
        package var jitter: UInt32
        package var lastSenderReport: UInt32
        package var delaySinceLastSenderReport: UInt32
        package init(ssrc: UInt32, fractionLost: UInt8 = 0, totalLost: Int32 = 0, highestSequence: UInt32 = 0, jitter: UInt32 = 0, lastSenderReport: UInt32 = 0, delaySinceLastSenderReport: UInt32 = 0) {
            self.ssrc = ssrc
            self.fractionLost = fractionLost
            self.totalLost = totalLost
            self.highestSequence = highestSequence
            self.jitter = jitter
            self.lastSenderReport = lastSenderReport
            self.delaySinceLastSenderReport = delaySinceLastSenderReport
        }
    }

    package struct SenderInfo: Sendable, Equatable, Codable {
        package var ssrc: UInt32
        package var ntpSeconds: UInt32
        package var ntpFraction: UInt32
        package var rtpTimestamp: UInt32
        package var packetCount: UInt32
        package var octetCount: UInt32
        package init(ssrc: UInt32, ntpSeconds: UInt32, ntpFraction: UInt32, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32) {
            self.ssrc = ssrc
            self.ntpSeconds = ntpSeconds
            self.ntpFraction = ntpFraction
            self.rtpTimestamp = rtpTimestamp
            self.packetCount = packetCount
            self.octetCount = octetCount
        }
    }

    /// The sender info of an SR.
    package static func senderInfo(_ v: RtcpView) throws(RtcpError) -> SenderInfo {
        guard v.type == RtcpType.sr, v.length >= 28 else { throw .truncated }
        return SenderInfo(ssrc: v.u32(4), ntpSeconds: v.u32(8), ntpFraction: v.u32(12), rtpTimestamp: v.u32(16), packetCount: v.u32(20), octetCount: v.u32(24))
    }

    /// The report blocks of an SR or RR, checked against the length.
    package static func forEachReportBlock(_ v: RtcpView, _ body: (ReportBlock) -> Void) throws(RtcpError) {
        let first = v.type == RtcpType.sr ? 28 : 8
        guard v.type == RtcpType.sr || v.type == RtcpType.rr else { throw .truncated }
        guard v.length >= first + Int(v.count) * 24 else { throw .truncated }
        for i in 0..<Int(v.count) {
            let o = first + i * 24
            let lost24 = v.u32(o + 4) & 0x00FF_FFFF
            let total = lost24 & 0x80_0000 != 0 ? Int32(bitPattern: lost24 | 0xFF00_0000) : Int32(lost24)
            body(ReportBlock(ssrc: v.u32(o), fractionLost: v.u8(o + 4), totalLost: total, highestSequence: v.u32(o + 8),
                             jitter: v.u32(o + 12), lastSenderReport: v.u32(o + 16), delaySinceLastSenderReport: v.u32(o + 20)))
        }
    }

    /// The items of every SDES chunk: (ssrc, item type, value offset in
    /// `v.base`, value length).
    package static func forEachSdesItem(_ v: RtcpView, _ body: (UInt32, UInt8, Int, Int) -> Void) throws(RtcpError) {
        guard v.type == RtcpType.sdes else { throw .truncated }
        var o = 4
        for _ in 0..<Int(v.count) {
            guard o + 4 <= v.length else { throw .truncated }
            let ssrc = v.u32(o)
            o += 4
            while true {
                guard o < v.length else { throw .truncated }
                let itemType = v.u8(o)
                if itemType == 0 {
                    // End of chunk: skip to the next 32-bit boundary.
                    o = (o + 4) & ~3
                    break
                }
                guard o + 2 <= v.length else { throw .truncated }
                let len = Int(v.u8(o + 1))
                guard o + 2 + len <= v.length else { throw .truncated }
                body(ssrc, itemType, v.offset + o + 2, len)
                o += 2 + len
            }
        }
    }

    /// The SSRCs a BYE names.
    package static func forEachByeSsrc(_ v: RtcpView, _ body: (UInt32) -> Void) throws(RtcpError) {
        guard v.type == RtcpType.bye, v.length >= 4 + Int(v.count) * 4 else { throw .truncated }
        for i in 0..<Int(v.count) { body(v.u32(4 + i * 4)) }
    }

    /// Feedback header: sender SSRC and media SSRC (RFC 4585).
    package static func feedbackSsrcs(_ v: RtcpView) throws(RtcpError) -> (sender: UInt32, media: UInt32) {
        guard v.type == RtcpType.rtpfb || v.type == RtcpType.psfb, v.length >= 12 else { throw .truncated }
        return (v.u32(4), v.u32(8))
    }

    /// Every sequence number a generic NACK asks for (PID + BLP bitmask).
    package static func forEachNackedSequence(_ v: RtcpView, _ body: (UInt16) -> Void) throws(RtcpError) {
        guard v.type == RtcpType.rtpfb, v.count == RtcpFormat.nack, v.length >= 16, (v.length - 12) % 4 == 0 else { throw .truncated }
        var o = 12
        while o + 4 <= v.length {
            let pid = v.u16(o)
            let blp = v.u16(o + 2)
            body(pid)
            for bit in 0..<16 where blp & (1 << bit) != 0 { body(pid &+ UInt16(bit + 1)) }
            o += 4
        }
    }

    /// FIR entries (RFC 5104 4.3.1): the SSRC asked for a key frame and the
    /// request's sequence number (a repeat of the same number is the same request).
    package static func forEachFirEntry(_ v: RtcpView, _ body: (UInt32, UInt8) -> Void) throws(RtcpError) {
        guard v.type == RtcpType.psfb, v.count == RtcpFormat.fir, v.length >= 20, (v.length - 12) % 8 == 0 else { throw .truncated }
        var o = 12
        while o + 8 <= v.length {
            body(v.u32(o), v.u8(o + 4))
            o += 8
        }
    }

    /// REMB: the estimated bitrate (bps) and the SSRCs it applies to.
    package static func remb(_ v: RtcpView, _ ssrcs: (UInt32) -> Void) throws(RtcpError) -> UInt64? {
        guard v.type == RtcpType.psfb, v.count == RtcpFormat.afb, v.length >= 20 else { throw .truncated }
        guard v.u32(12) == 0x5245_4D42 else { return nil } // "REMB"
        let n = Int(v.u8(16))
        guard v.length >= 20 + n * 4 else { throw .truncated }
        let exp = UInt64(v.u8(17) >> 2)
        let mantissa = UInt64(v.u32(16) & 0x3_FFFF)
        guard exp < 46 else { throw .truncated }
        for i in 0..<n { ssrcs(v.u32(20 + i * 4)) }
        return mantissa << exp
    }

    package struct TransportCcHeader: Sendable, Equatable {
        package var baseSequence: UInt16
        package var statusCount: UInt16
        /// Reference time in multiples of 64 ms (24-bit signed).
        package var referenceTime: Int32
        package var feedbackCount: UInt8
        /// Packets reported received (each has a receive delta).
        package var receivedCount: Int
    }

    /// Transport-wide CC feedback: header, with every status chunk and
    /// receive delta checked against the length.
    package static func transportCc(_ v: RtcpView) throws(RtcpError) -> TransportCcHeader {
        var received = 0
        let header = try forEachTransportCcPacket(v) { _, delta in if delta != nil { received += 1 } }
        return TransportCcHeader(baseSequence: header.baseSequence, statusCount: header.statusCount, referenceTime: header.referenceTime,
                                 feedbackCount: header.feedbackCount, receivedCount: received)
    }

    /// Walks a transport-wide CC feedback packet: `body(sequence, delta)`
    /// for each packet status in order, the receive delta in 250 us ticks
    /// (nil: not received). Everything is checked against the length before
    /// `body` sees anything, so a truncated packet reports nothing.
    @discardableResult
    /// A transport-wide feedback packet's reference time (signed 24 bits, 64 ms units).
    package static func transportCcReferenceTime(_ v: RtcpView) throws(RtcpError) -> Int32 {
        guard v.type == RtcpType.rtpfb, v.count == RtcpFormat.transportCc, v.length >= 20 else { throw .truncated }
        let ref24 = v.u32(16) >> 8
        return ref24 & 0x80_0000 != 0 ? Int32(bitPattern: ref24 | 0xFF00_0000) : Int32(ref24)
    }

    package static func forEachTransportCcPacket(_ v: RtcpView, _ body: (UInt16, Int32?) -> Void) throws(RtcpError) -> TransportCcHeader {
        guard v.type == RtcpType.rtpfb, v.count == RtcpFormat.transportCc, v.length >= 20 else { throw .truncated }
        let base = v.u16(12)
        let statusCount = Int(v.u16(14))
        let ref24 = v.u32(16) >> 8
        let reference = ref24 & 0x80_0000 != 0 ? Int32(bitPattern: ref24 | 0xFF00_0000) : Int32(ref24)
        // Pass 1: chunk bounds and the bytes of deltas they announce.
        var o = 20
        var described = 0
        var deltaBytes = 0
        var received = 0
        while described < statusCount {
            guard o + 2 <= v.length else { throw .truncated }
            let chunk = v.u16(o)
            o += 2
            forEachSymbol(chunk, remaining: statusCount - described) { symbol in
                if symbol == 1 || symbol == 2 { deltaBytes += Int(symbol); received += 1 }
                described += 1
            }
            if chunk & 0x8000 == 0 && chunk & 0x1FFF == 0 { throw .truncated } // an empty run: no progress
        }
        guard o + deltaBytes <= v.length else { throw .truncated }
        // Pass 2: the statuses with their deltas.
        var c = 20
        var d = o
        var sequence = base
        described = 0
        while described < statusCount {
            let chunk = v.u16(c)
            c += 2
            forEachSymbol(chunk, remaining: statusCount - described) { symbol in
                switch symbol {
                case 1: body(sequence, Int32(v.u8(d))); d += 1
                case 2: body(sequence, Int32(Int16(bitPattern: v.u16(d)))); d += 2
                default: body(sequence, nil)
                }
                sequence &+= 1
                described += 1
            }
        }
        return TransportCcHeader(baseSequence: base, statusCount: UInt16(statusCount), referenceTime: reference, feedbackCount: v.u8(19), receivedCount: received)
    }

    /// The status symbols of one chunk (at most `remaining`): 0 not
    /// received, 1 small delta, 2 large delta, 3 reserved (no delta).
    @inline(__always)
    static func forEachSymbol(_ chunk: UInt16, remaining: Int, _ body: (UInt8) -> Void) {
        if chunk & 0x8000 == 0 {
            // Run length: 0 | symbol (2 bits) | length (13 bits).
            let symbol = UInt8((chunk >> 13) & 0x3)
            for _ in 0..<min(Int(chunk & 0x1FFF), remaining) { body(symbol) }
        } else if chunk & 0x4000 == 0 {
            // Status vector of 14 one-bit symbols.
            for i in 0..<min(14, remaining) { body(chunk & (1 << (13 - i)) != 0 ? 1 : 0) }
        } else {
            // Status vector of 7 two-bit symbols.
            for i in 0..<min(7, remaining) { body(UInt8((chunk >> (12 - 2 * i)) & 0x3)) }
        }
    }
}
