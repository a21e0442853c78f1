import Testing
@testable import RingSFUForwarder

/// Every RTCP packet type: build, parse, round trip, and malformed input.
@Suite("RTCP")
struct RtcpTests {
    func build(_ capacity: Int = 1500, _ body: (UnsafeMutableRawPointer, Int) -> Int) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: capacity)
        let n = buf.withUnsafeMutableBytes { body($0.baseAddress!, capacity) }
        return Array(buf[0..<n])
    }

    func views(_ bytes: [UInt8]) throws -> [(type: UInt8, count: UInt8, offset: Int, length: Int)] {
        var out: [(UInt8, UInt8, Int, Int)] = []
        try bytes.withUnsafeBytes { raw in
            try Rtcp.forEach(raw.baseAddress!, count: raw.count) { v in out.append((v.type, v.count, v.offset, v.length)) }
        }
        return out.map { (type: $0.0, count: $0.1, offset: $0.2, length: $0.3) }
    }

    /// Runs `body` on the first (or `index`th) packet of `bytes`.
    func with<T>(_ bytes: [UInt8], index: Int = 0, _ body: (RtcpView) throws(RtcpError) -> T) throws -> T {
        var result: T? = nil
        var i = 0
        try bytes.withUnsafeBytes { raw in
            try Rtcp.forEach(raw.baseAddress!, count: raw.count) { (v) throws(RtcpError) in
                if i == index { result = try body(v) }
                i += 1
            }
        }
        return result!
    }

    let blocks = [Rtcp.ReportBlock(ssrc: 11, fractionLost: 25, totalLost: -3, highestSequence: 70_000, jitter: 12, lastSenderReport: 0xAABB_CCDD, delaySinceLastSenderReport: 655),
                  Rtcp.ReportBlock(ssrc: 12, fractionLost: 0, totalLost: 100_000, highestSequence: 5, jitter: 0, lastSenderReport: 0, delaySinceLastSenderReport: 0)]

    @Test func senderReportRoundTrip() throws {
        let info = Rtcp.SenderInfo(ssrc: 0x1234_5678, ntpSeconds: 3_900_000_000, ntpFraction: 0x8000_0000, rtpTimestamp: 90_000, packetCount: 42, octetCount: 4200)
        let bytes = build { p, c in RtcpWriter.senderReport(p, capacity: c, info, blockCount: 2) { blocks[$0] } }
        #expect(bytes.count == 28 + 48)
        #expect(try with(bytes) { v throws(RtcpError) in try Rtcp.senderInfo(v) } == info)
        var got: [Rtcp.ReportBlock] = []
        try with(bytes) { v throws(RtcpError) in try Rtcp.forEachReportBlock(v) { got.append($0) } }
        #expect(got == blocks)
    }

    @Test func receiverReportRoundTrip() throws {
        let bytes = build { p, c in RtcpWriter.receiverReport(p, capacity: c, ssrc: 9, blockCount: 2) { blocks[$0] } }
        #expect(try views(bytes).map(\.type) == [RtcpType.rr])
        var got: [Rtcp.ReportBlock] = []
        try with(bytes) { v throws(RtcpError) in try Rtcp.forEachReportBlock(v) { got.append($0) } }
        #expect(got == blocks)
        // An empty RR (no blocks) is 8 bytes.
        #expect(build { p, c in RtcpWriter.receiverReport(p, capacity: c, ssrc: 9, blockCount: 0) { _ in blocks[0] } }.count == 8)
    }

    @Test func sdesByeAppRoundTrip() throws {
        for cname in ["", "abc", "abcd", "a-rather-longer-cname-value"] {
            let bytes = build { p, c in Array(cname.utf8).withUnsafeBytes { RtcpWriter.sdesCname(p, capacity: c, ssrc: 77, cname: $0) } }
            #expect(bytes.count % 4 == 0)
            var items: [(UInt32, UInt8, String)] = []
            try with(bytes) { v throws(RtcpError) in
                try Rtcp.forEachSdesItem(v) { ssrc, type, off, len in items.append((ssrc, type, String(decoding: bytes[off..<off + len], as: UTF8.self))) }
            }
            #expect(items.count == 1 && items[0].0 == 77 && items[0].1 == 1 && items[0].2 == cname)
        }
        let bye = build { p, c in RtcpWriter.bye(p, capacity: c, ssrc: 5) }
        var byes: [UInt32] = []
        try with(bye) { v throws(RtcpError) in try Rtcp.forEachByeSsrc(v) { byes.append($0) } }
        #expect(byes == [5])
        let app = build { p, c in [UInt8](repeating: 7, count: 8).withUnsafeBytes { RtcpWriter.app(p, capacity: c, subtype: 3, ssrc: 1, name: 0x5445_5354, data: $0) } }
        let v = try views(app)
        #expect(v.count == 1 && v[0].type == RtcpType.app && v[0].count == 3 && v[0].length == 20)
    }

    @Test func compoundAndReducedSize() throws {
        let sr = build { p, c in RtcpWriter.senderReport(p, capacity: c, Rtcp.SenderInfo(ssrc: 1, ntpSeconds: 2, ntpFraction: 3, rtpTimestamp: 4, packetCount: 5, octetCount: 6)) }
        let sdes = build { p, c in Array("x".utf8).withUnsafeBytes { RtcpWriter.sdesCname(p, capacity: c, ssrc: 1, cname: $0) } }
        let pli = build { p, c in RtcpWriter.pli(p, capacity: c, sender: 1, media: 2) }
        #expect(try views(sr + sdes + pli).map(\.type) == [RtcpType.sr, RtcpType.sdes, RtcpType.psfb])
        // RFC 5506: a feedback packet on its own.
        let alone = try views(pli)
        #expect(alone.count == 1 && alone[0].count == RtcpFormat.pli)
        #expect(try with(pli) { v throws(RtcpError) in try Rtcp.feedbackSsrcs(v) } == (1, 2))
    }

    @Test(arguments: [[100, 101, 105, 117, 118, 200], [65534, 65535, 0, 3], [7]])
    func nackRoundTrip(_ seqs: [Int]) throws {
        let s = seqs.map { UInt16($0) }
        let bytes = build { p, c in RtcpWriter.nack(p, capacity: c, sender: 1, media: 99, count: s.count) { s[$0] } }
        var got: [UInt16] = []
        try with(bytes) { v throws(RtcpError) in try Rtcp.forEachNackedSequence(v) { got.append($0) } }
        #expect(got == s)
        #expect(try with(bytes) { v throws(RtcpError) in try Rtcp.feedbackSsrcs(v) }.media == 99)
    }

    @Test func firAndRembRoundTrip() throws {
        let fir = build { p, c in RtcpWriter.fir(p, capacity: c, sender: 1, target: 0xCAFE, sequence: 9) }
        var entries: [(UInt32, UInt8)] = []
        try with(fir) { v throws(RtcpError) in try Rtcp.forEachFirEntry(v) { entries.append(($0, $1)) } }
        #expect(entries.count == 1 && entries[0] == (0xCAFE, 9))
        let ssrcs: [UInt32] = [3, 4]
        let remb = build { p, c in RtcpWriter.remb(p, capacity: c, sender: 1, bitrate: 1_500_000, ssrcCount: 2) { ssrcs[$0] } }
        var named: [UInt32] = []
        let bitrate = try with(remb) { v throws(RtcpError) in try Rtcp.remb(v) { named.append($0) } }
        #expect(named == ssrcs)
        let b = try #require(bitrate)
        #expect(b <= 1_500_000 && b > 1_499_000)
    }

    @Test func transportCcFeedback() throws {
        // base 10, 3 packets: a run-length chunk of "small delta" x3, 3 one-byte deltas.
        var p: [UInt8] = [0x8F, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 10, 0, 3, 0, 0, 1, 7, 0x20, 0x03, 4, 4, 4, 0, 0, 0]
        p[3] = UInt8(p.count / 4 - 1)
        let h = try with(p) { v throws(RtcpError) in try Rtcp.transportCc(v) }
        #expect(h.baseSequence == 10 && h.statusCount == 3 && h.receivedCount == 3 && h.referenceTime == 1 && h.feedbackCount == 7)
        // Deltas missing: truncated.
        var short = Array(p[0..<24])
        short[3] = UInt8(short.count / 4 - 1)
        #expect(throws: RtcpError.truncated) { try with(short) { v throws(RtcpError) in try Rtcp.transportCc(v) } }
        // A two-bit status vector chunk: 2 of its symbols used, both large deltas -> 4 bytes.
        var q: [UInt8] = [0x8F, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0xE8, 0x00, 0, 1, 0, 1, 0, 0]
        q[3] = UInt8(q.count / 4 - 1)
        #expect(try with(q) { v throws(RtcpError) in try Rtcp.transportCc(v) }.receivedCount == 2)
    }

    @Test func malformedPacketsAreRejected() throws {
        let pli = build { p, c in RtcpWriter.pli(p, capacity: c, sender: 1, media: 2) }
        #expect(throws: RtcpError.tooShort) { try views([0x80, 201]) }
        #expect(throws: RtcpError.badVersion) { try views([0x40] + pli.dropFirst()) }
        var long = pli
        long[3] = 10
        #expect(throws: RtcpError.badLength) { try views(long) }
        // Padding flag on a packet that is not the last one.
        var padded = pli
        padded[0] |= 0x20
        #expect(throws: RtcpError.badPadding) { try views(padded + pli) }
        // Padding count larger than the packet.
        var pad = pli
        pad[0] |= 0x20
        pad[11] = 40
        #expect(throws: RtcpError.badPadding) { try views(pad) }
        // A NACK without FCI, a FIR with half an entry.
        var nack: [UInt8] = [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]
        #expect(throws: RtcpError.truncated) { try with(nack) { v throws(RtcpError) in try Rtcp.forEachNackedSequence(v) { _ in } } }
        nack[0] = 0x84; nack[1] = 206; nack += [0, 0, 0, 3]; nack[3] = 3
        #expect(throws: RtcpError.truncated) { try with(nack) { v throws(RtcpError) in try Rtcp.forEachFirEntry(v) { _, _ in } } }
        // An RR that claims two blocks but carries one.
        var rr = build { p, c in RtcpWriter.receiverReport(p, capacity: c, ssrc: 9, blockCount: 1) { blocks[$0] } }
        rr[0] = 0x82
        #expect(throws: RtcpError.truncated) { try with(rr) { v throws(RtcpError) in try Rtcp.forEachReportBlock(v) { _ in } } }
        // An SDES item running past the packet, and a chunk without its end.
        let sdes: [UInt8] = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 0x41, 0x42]
        #expect(throws: RtcpError.truncated) { try with(sdes) { v throws(RtcpError) in try Rtcp.forEachSdesItem(v) { _, _, _, _ in } } }
        let open: [UInt8] = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, 0x41, 0x42]
        #expect(throws: RtcpError.truncated) { try with(open) { v throws(RtcpError) in try Rtcp.forEachSdesItem(v) { _, _, _, _ in } } }
        // A REMB whose SSRC count runs past the end.
        var remb = build { p, c in RtcpWriter.remb(p, capacity: c, sender: 1, bitrate: 1000, ssrcCount: 1) { _ in 5 } }
        remb[16] = 9
        #expect(throws: RtcpError.truncated) { try with(remb) { v throws(RtcpError) in try Rtcp.remb(v) { _ in } } }
    }

    /// Random bytes and random mutations of valid packets: every parser
    /// either succeeds or throws; nothing traps or reads out of bounds.
    @Test func fuzzNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        let seeds: [[UInt8]] = [
            build { p, c in RtcpWriter.senderReport(p, capacity: c, Rtcp.SenderInfo(ssrc: 1, ntpSeconds: 2, ntpFraction: 3, rtpTimestamp: 4, packetCount: 5, octetCount: 6), blockCount: 2) { blocks[$0] } },
            build { p, c in RtcpWriter.nack(p, capacity: c, sender: 1, media: 2, count: 3) { UInt16($0 * 3) } },
            build { p, c in RtcpWriter.fir(p, capacity: c, sender: 1, target: 2, sequence: 3) },
            build { p, c in Array("cname".utf8).withUnsafeBytes { RtcpWriter.sdesCname(p, capacity: c, ssrc: 1, cname: $0) } },
            [0x8F, 205, 0, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 10, 0, 3, 0, 0, 1, 7, 0x20, 0x03, 4, 4, 4, 0, 0, 0],
        ]
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if !bytes.isEmpty { bytes[0] = 0x80 | (bytes[0] & 0x3F) }
            } else {
                bytes = seeds[i % seeds.count]
                for _ in 0..<3 { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
            }
            bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                try? Rtcp.forEach(base, count: raw.count) { v in
                    _ = try? Rtcp.senderInfo(v)
                    try? Rtcp.forEachReportBlock(v) { _ in }
                    try? Rtcp.forEachSdesItem(v) { _, _, _, _ in }
                    try? Rtcp.forEachByeSsrc(v) { _ in }
                    _ = try? Rtcp.feedbackSsrcs(v)
                    try? Rtcp.forEachNackedSequence(v) { _ in }
                    try? Rtcp.forEachFirEntry(v) { _, _ in }
                    _ = try? Rtcp.remb(v) { _ in }
                    _ = try? Rtcp.transportCc(v)
                }
            }
        }
    }
}
