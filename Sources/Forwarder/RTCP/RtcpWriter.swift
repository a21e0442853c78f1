/// Builds RTCP packets into caller-provided memory. Each function returns the
/// bytes written, or 0 if they did not fit in `capacity`.
package enum RtcpWriter {
    @inline(__always)
    static func put32(_ p: UnsafeMutableRawPointer, _ at: Int, _ v: UInt32) { p.storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt32.self) }
    @inline(__always)
    static func put16(_ p: UnsafeMutableRawPointer, _ at: Int, _ v: UInt16) { p.storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt16.self) }

    @inline(__always)
    static func header(_ p: UnsafeMutableRawPointer, count: UInt8, type: UInt8, length: Int) {
        p.storeBytes(of: 0x80 | (count & 0x1F), as: UInt8.self)
        p.storeBytes(of: type, toByteOffset: 1, as: UInt8.self)
        put16(p, 2, UInt16(length / 4 - 1))
    }

    static func reportBlock(_ p: UnsafeMutableRawPointer, _ at: Int, _ b: Rtcp.ReportBlock) {
        put32(p, at, b.ssrc)
        let lost = UInt32(bitPattern: max(-0x80_0000, min(0x7F_FFFF, b.totalLost))) & 0x00FF_FFFF
        put32(p, at + 4, UInt32(b.fractionLost) << 24 | lost)
        put32(p, at + 8, b.highestSequence)
        put32(p, at + 12, b.jitter)
        put32(p, at + 16, b.lastSenderReport)
        put32(p, at + 20, b.delaySinceLastSenderReport)
    }

    /// A sender report with up to 31 report blocks (`blocks(i)` gives block i).
    package static func senderReport(_ p: UnsafeMutableRawPointer, capacity: Int, _ info: Rtcp.SenderInfo, blockCount: Int = 0, blocks: (Int) -> Rtcp.ReportBlock = { _ in Rtcp.ReportBlock(ssrc: 0) }) -> Int {
        let n = min(blockCount, 31)
        let length = 28 + 24 * n
        guard length <= capacity else { return 0 }
        header(p, count: UInt8(n), type: RtcpType.sr, length: length)
        put32(p, 4, info.ssrc)
        put32(p, 8, info.ntpSeconds)
        put32(p, 12, info.ntpFraction)
        put32(p, 16, info.rtpTimestamp)
        put32(p, 20, info.packetCount)
        put32(p, 24, info.octetCount)
        for i in 0..<n { reportBlock(p, 28 + 24 * i, blocks(i)) }
        return length
    }

    package static func receiverReport(_ p: UnsafeMutableRawPointer, capacity: Int, ssrc: UInt32, blockCount: Int, blocks: (Int) -> Rtcp.ReportBlock) -> Int {
        let n = min(blockCount, 31)
        let length = 8 + 24 * n
        guard length <= capacity else { return 0 }
        header(p, count: UInt8(n), type: RtcpType.rr, length: length)
        put32(p, 4, ssrc)
        for i in 0..<n { reportBlock(p, 8 + 24 * i, blocks(i)) }
        return length
    }

    /// An SDES packet with one chunk holding a CNAME item.
    package static func sdesCname(_ p: UnsafeMutableRawPointer, capacity: Int, ssrc: UInt32, cname: UnsafeRawBufferPointer) -> Int {
        let valueLength = min(cname.count, 255)
        // ssrc + type + len + value + at least one zero byte, to 32 bits.
        let length = (4 + 4 + 2 + valueLength + 1 + 3) & ~3
        guard length <= capacity else { return 0 }
        header(p, count: 1, type: RtcpType.sdes, length: length)
        put32(p, 4, ssrc)
        p.storeBytes(of: 1, toByteOffset: 8, as: UInt8.self)
        p.storeBytes(of: UInt8(valueLength), toByteOffset: 9, as: UInt8.self)
        if valueLength > 0 { (p + 10).copyMemory(from: cname.baseAddress!, byteCount: valueLength) }
        (p + 10 + valueLength).initializeMemory(as: UInt8.self, repeating: 0, count: length - 10 - valueLength)
        return length
    }

    package static func bye(_ p: UnsafeMutableRawPointer, capacity: Int, ssrc: UInt32) -> Int {
        guard capacity >= 8 else { return 0 }
        header(p, count: 1, type: RtcpType.bye, length: 8)
        put32(p, 4, ssrc)
        return 8
    }

    package static func app(_ p: UnsafeMutableRawPointer, capacity: Int, subtype: UInt8, ssrc: UInt32, name: UInt32, data: UnsafeRawBufferPointer) -> Int {
        guard data.count % 4 == 0 else { return 0 }
        let length = 12 + data.count
        guard length <= capacity else { return 0 }
        header(p, count: subtype, type: RtcpType.app, length: length)
        put32(p, 4, ssrc)
        put32(p, 8, name)
        if !data.isEmpty { (p + 12).copyMemory(from: data.baseAddress!, byteCount: data.count) }
        return length
    }

    package static func pli(_ p: UnsafeMutableRawPointer, capacity: Int, sender: UInt32, media: UInt32) -> Int {
        guard capacity >= 12 else { return 0 }
        header(p, count: RtcpFormat.pli, type: RtcpType.psfb, length: 12)
        put32(p, 4, sender)
        put32(p, 8, media)
        return 12
    }

    /// A FIR asking `target` for a key frame with request number `sequence`.
    package static func fir(_ p: UnsafeMutableRawPointer, capacity: Int, sender: UInt32, target: UInt32, sequence: UInt8) -> Int {
        guard capacity >= 20 else { return 0 }
        header(p, count: RtcpFormat.fir, type: RtcpType.psfb, length: 20)
        put32(p, 4, sender)
        put32(p, 8, 0)
        put32(p, 12, target)
        put32(p, 16, UInt32(sequence) << 24)
        return 20
    }

    /// A generic NACK for `count` sequence numbers (`sequence(i)`), packed
    /// into PID/BLP pairs; the numbers must be in ascending order (mod 2^16).
    package static func nack(_ p: UnsafeMutableRawPointer, capacity: Int, sender: UInt32, media: UInt32, count: Int, sequence: (Int) -> UInt16) -> Int {
        guard count > 0, capacity >= 16 else { return 0 }
        header(p, count: RtcpFormat.nack, type: RtcpType.rtpfb, length: 12)
        put32(p, 4, sender)
        put32(p, 8, media)
        var o = 12
        var i = 0
        while i < count {
            guard o + 4 <= capacity else { break }
            let pid = sequence(i)
            var blp: UInt16 = 0
            i += 1
            while i < count {
                let d = sequence(i) &- pid
                guard d >= 1, d <= 16 else { break }
                blp |= 1 << (d - 1)
                i += 1
            }
            put16(p, o, pid)
            put16(p, o + 2, blp)
            o += 4
        }
        put16(p, 2, UInt16(o / 4 - 1))
        return o
    }

    package static func remb(_ p: UnsafeMutableRawPointer, capacity: Int, sender: UInt32, bitrate: UInt64, ssrcCount: Int, ssrc: (Int) -> UInt32) -> Int {
        let n = min(ssrcCount, 255)
        let length = 20 + 4 * n
        guard length <= capacity else { return 0 }
        header(p, count: RtcpFormat.afb, type: RtcpType.psfb, length: length)
        put32(p, 4, sender)
        put32(p, 8, 0)
        put32(p, 12, 0x5245_4D42)
        var exp: UInt32 = 0
        var mantissa = bitrate
        while mantissa > 0x3_FFFF { mantissa >>= 1; exp += 1 }
        put32(p, 16, UInt32(n) << 24 | exp << 18 | UInt32(mantissa))
        for i in 0..<n { put32(p, 20 + 4 * i, ssrc(i)) }
        return length
    }
}
