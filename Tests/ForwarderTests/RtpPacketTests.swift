import Testing
import RingSFUTestSupport
@testable import RingSFUForwarder

@Suite("RTP parsing (RFC 3550, RFC 8285)")
struct RtpPacketTests {
    func parse(_ bytes: [UInt8]) throws(RtpParseError) -> RtpHeader {
        var result: Result<RtpHeader, RtpParseError> = .failure(.tooShort)
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            do throws(RtpParseError) { result = .success(try RtpHeader.parse(base, count: raw.count)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    @Test func plainHeader() throws {
        let h = try parse(makeRtp(pt: 96, seq: 0xABCD, ts: 0x01020304, ssrc: 0xDEADBEEF, marker: true, payload: [1, 2, 3]))
        #expect(h.payloadType == 96 && h.marker)
        #expect(h.sequenceNumber == 0xABCD && h.timestamp == 0x01020304 && h.ssrc == 0xDEADBEEF)
        #expect(h.payloadOffset == 12 && h.payloadLength == 3 && h.paddingLength == 0)
    }

    @Test func csrcsExtensionAndPadding() throws {
        var p: [UInt8] = [0xB2, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3] // P, X, CC=2
        p += [0, 0, 0, 9, 0, 0, 0, 10] // CSRCs
        p += [0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0x00, 0x00] // one-byte ext: id 1, 1 byte, padding
        p += [7, 7, 7, 0, 0, 3] // payload 3 bytes + 3 padding
        let h = try parse(p)
        #expect(h.csrcCount == 2)
        #expect(h.extensionOffset == 20 && h.hasOneByteExtensions && h.extensionLength == 4)
        #expect(h.payloadOffset == 28 && h.payloadLength == 3 && h.paddingLength == 3)
        var seen: [(UInt8, Int)] = []
        try p.withUnsafeBytes { raw in try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, _, len in seen.append((id, len)) } }
        #expect(seen.count == 1 && seen[0].0 == 1 && seen[0].1 == 1)
    }

    @Test func twoByteExtensions() throws {
        var p = makeRtp(seq: 1, ssrc: 1, payload: [9])
        p[0] |= 0x10
        p.insert(contentsOf: [0x10, 0x00, 0, 2, 200, 3, 1, 2, 3, 0, 0, 0], at: 12)
        let h = try parse(p)
        #expect(h.hasTwoByteExtensions)
        var ids: [UInt8] = []
        try p.withUnsafeBytes { raw in try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, _, len in ids.append(id); #expect(len == 3) } }
        #expect(ids == [200])
        // Remapping to 0 removes the element by zeroing it.
        var map = ExtensionIdMap()
        map.table[200] = 0
        try p.withUnsafeMutableBytes { raw in try RtpHeaderExtensions.remapIds(raw.baseAddress!, h, map) }
        ids = []
        try p.withUnsafeBytes { raw in try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, _, _ in ids.append(id) } }
        #expect(ids.isEmpty)
    }

    @Test func oneByteRemap() throws {
        var p = makeRtp(seq: 1, ssrc: 1, extensions: [(1, [5]), (3, [6, 7]), (4, [8])])
        let h = try parse(p)
        let map = ExtensionIdMap(pairs: [(1, 10), (3, 3)]) // 4 is dropped
        try p.withUnsafeMutableBytes { raw in try RtpHeaderExtensions.remapIds(raw.baseAddress!, h, map) }
        var seen: [(UInt8, [UInt8])] = []
        try p.withUnsafeBytes { raw in
            try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, off, len in seen.append((id, Array(raw[off..<off + len]))) }
        }
        #expect(seen.map(\.0) == [10, 3])
        #expect(seen.map(\.1) == [[5], [6, 7]])
    }

    /// Bad input of every kind is an error value, never a trap.
    @Test(arguments: [
        ([], RtpParseError.tooShort),
        ([0x80], .tooShort),
        ([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .badVersion),
        ([0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], .csrcBeyondPacket),
        ([0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE], .extensionBeyondPacket),
        ([0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 9, 0, 0, 0, 0], .extensionBeyondPacket),
        ([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 200], .badPadding),
        ([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0], .badPadding),
        ([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .badPadding),
    ] as [([UInt8], RtpParseError)])
    func malformed(bytes: [UInt8], expected: RtpParseError) {
        #expect(throws: expected) { try parse(bytes) }
    }

    @Test func extensionElementPastBlockIsAnError() throws {
        // One-byte element claiming 16 bytes inside a 4-byte block.
        let p: [UInt8] = [0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1, 0x1F, 0, 0, 0, 9]
        let h = try parse(p)
        #expect(throws: RtpParseError.badExtension) {
            try p.withUnsafeBytes { raw in try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { _, _, _ in } }
        }
    }

    /// Random bytes never trap the parser or the extension walker.
    @Test func randomInputNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...64, using: &rng)
            var p = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if n > 0 { p[0] = 0x80 | (p[0] & 0x3F) }
            if let h = try? parse(p) {
                #expect(h.payloadOffset + h.payloadLength + h.paddingLength == p.count)
                p.withUnsafeMutableBytes { raw in
                    _ = try? RtpHeaderExtensions.forEach(raw.baseAddress!, h) { _, off, len in #expect(off + len <= raw.count) }
                    _ = try? RtpHeaderExtensions.remapIds(raw.baseAddress!, h, ExtensionIdMap())
                }
            }
        }
    }

    @Test func demultiplexing() {
        func cls(_ b: [UInt8]) -> PacketClass { b.withUnsafeBytes { PacketClass.classify($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: $0.count) } }
        #expect(cls([0x00, 0x01]) == .stun)
        #expect(cls([22, 254]) == .dtls)
        #expect(cls([0x80, 96]) == .rtp)
        #expect(cls([0x80, 200]) == .rtcp)
        #expect(cls([0x81, 201]) == .rtcp)
        #expect(cls([0x80, 0x80 | 96]) == .rtp) // marker set
        #expect(cls([0xFF]) == .unknown)
        #expect(cls([]) == .unknown)
    }

    @Test func vp8KeyFrames() {
        func key(_ b: [UInt8]) -> Bool { b.withUnsafeBytes { Vp8PayloadDescriptor.isKeyFrame($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: $0.count) } }
        #expect(key(vp8Payload(keyFrame: true)))
        #expect(!key(vp8Payload(keyFrame: false)))
        #expect(!key(vp8Payload(keyFrame: true, start: false)))
        // Extended descriptor with a 15-bit picture id, TL0PICIDX and TID.
        #expect(key([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x00]))
        #expect(!key([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x01]))
        #expect(!key([0x90, 0xE0, 0x80])) // truncated
        #expect(!key([]))
    }
}

@Suite("Preallocated structures")
struct StructureTests {
    @Test func ssrcTableInsertLookupRemove() {
        var t = SsrcTable(capacityPowerOfTwo: 6)
        for i in UInt32(0)..<30 { let ok = t.insert(transport: i % 3, ssrc: i * 7919, value: i); #expect(ok) }
        for i in UInt32(0)..<30 { let v = t.lookup(transport: i % 3, ssrc: i * 7919); #expect(v == i) }
        let missing = t.lookup(transport: 9, ssrc: 7919)
        #expect(missing == nil)
        for i in UInt32(0)..<30 where i % 2 == 0 { let ok = t.remove(transport: i % 3, ssrc: i * 7919); #expect(ok) }
        for i in UInt32(0)..<30 { let v = t.lookup(transport: i % 3, ssrc: i * 7919); #expect(v == (i % 2 == 0 ? nil : i)) }
        var count = t.count
        #expect(count == 15)
        // Tombstones are reused.
        for i in UInt32(100)..<140 { _ = t.insert(transport: 1, ssrc: i, value: i) }
        count = t.count
        #expect(count == 55)
        let last = t.lookup(transport: 1, ssrc: 139)
        #expect(last == 139)
    }

    @Test func freeListExhaustsAndRefills() {
        var f = FreeList(capacity: 4)
        var got: [Int32] = []
        for _ in 0..<5 { got.append(f.pop()) }
        #expect(got.sorted() == [-1, 0, 1, 2, 3])
        f.push(2)
        let a = f.pop(), b = f.pop()
        #expect(a == 2 && b == -1)
    }

    @Test func timerWheelFiresInOrderOfDeadline() {
        var wheel = TimerWheel(tickNs: 1_000_000, slots: 8, capacity: 16, nowNs: 0)
        wheel.schedule(.init(kind: 1, argument: 1), at: 3_000_000)
        let cancelled = wheel.schedule(.init(kind: 1, argument: 2), at: 4_000_000)
        wheel.schedule(.init(kind: 1, argument: 3), at: 20_000_000) // beyond one revolution
        wheel.cancel(cancelled)
        let next = wheel.nextDeadline()
        #expect(next == 3_000_000)
        var fired: [UInt32] = []
        wheel.advance(to: 2_000_000) { fired.append($0.argument) }
        #expect(fired.isEmpty)
        wheel.advance(to: 5_000_000) { fired.append($0.argument) }
        #expect(fired == [1])
        wheel.advance(to: 12_000_000) { fired.append($0.argument) }
        #expect(fired == [1])
        wheel.advance(to: 21_000_000) { fired.append($0.argument) }
        #expect(fired == [1, 3])
        let active = wheel.activeCount, none = wheel.nextDeadline()
        #expect(active == 0 && none == nil)
    }

    @Test func timerWheelRefusesWhenFull() {
        var wheel = TimerWheel(tickNs: 1_000, slots: 4, capacity: 2, nowNs: 0)
        let a = wheel.schedule(.init(kind: 0, argument: 0), at: 10)
        let b = wheel.schedule(.init(kind: 0, argument: 0), at: 10)
        let c = wheel.schedule(.init(kind: 0, argument: 0), at: 10)
        #expect(a >= 0 && b >= 0 && c == -1)
    }
}
