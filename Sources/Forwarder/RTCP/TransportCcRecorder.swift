/// The receive side of transport-wide congestion control
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01) for one transport:
/// it records when each transport-wide sequence number arrived and turns
/// the unreported ones into feedback packets for the sender's estimator.
///
/// A pure unit: arrival times come in as parameters, packets go out into
/// caller memory; no clock, no I/O, no allocation. Arrivals live in a
/// caller-provided ring of `capacity` entries, so memory per transport is
/// fixed whatever the peer sends.
package struct TransportCcRecorder {
    /// Sequence numbers remembered behind the newest one. Feedback goes out
    /// every 100 ms or after `eagerThreshold` packets, so this covers the
    /// reordering any real path shows many times over.
    package static let capacity = 1024
    static let mask = Int64(capacity - 1)
    /// Unreported packets that make the loop send feedback before its timer
    /// (about one full-size feedback packet's worth).
    package static let eagerThreshold = 400
    /// 250 us per delta tick, 64 ms (256 ticks) per reference time unit.
    static let tickUs: Int64 = 250

    /// Entry per sequence number modulo `capacity`: arrival time in
    /// microseconds << 16 | the 16-bit sequence number; 0 when empty.
    private let ring: UnsafeMutablePointer<UInt64>
    package private(set) var started = false
    /// Extended (unwrapped) sequence numbers: the newest seen, and the
    /// first not yet reported.
    package private(set) var highest: Int64 = 0
    package private(set) var nextToReport: Int64 = 0
    /// Counts feedback packets sent (the draft's 8-bit feedback packet count).
    package private(set) var feedbackCount: UInt8 = 0
    /// The media SSRC feedback names (the newest packet's; receivers ignore it).
    package var mediaSsrc: UInt32 = 0

    /// `ring` must hold `capacity` entries; it is cleared here.
    package init(ring: UnsafeMutablePointer<UInt64>) {
        self.ring = ring
        ring.update(repeating: 0, count: Self.capacity)
    }

    /// Packets arrived (or found missing) and not yet reported.
    package var pending: Int { started ? Int(max(0, highest - nextToReport + 1)) : 0 }

    /// Records one arriving packet. Duplicates keep their first arrival;
    /// a late packet that an earlier feedback reported lost is reported
    /// again with its arrival (the sender then counts it received).
    @inline(__always)
    package mutating func record(sequence: UInt16, arrivalNs: Int64) {
        let entry = UInt64(max(1, arrivalNs / 1000)) << 16 | UInt64(sequence)
        guard started else {
            started = true
            highest = Int64(sequence)
            nextToReport = highest
            ring[Int(highest & Self.mask)] = entry
            return
        }
        let ext = highest + Int64(Int16(bitPattern: sequence &- UInt16(truncatingIfNeeded: highest)))
        if ext > highest {
            // Slots of skipped numbers may hold entries from a lap ago.
            let skipped = min(ext - highest - 1, Int64(Self.capacity))
            var s = highest + 1
            // (A counted loop: a range of Int64 is not specialised in debug
            // builds and would allocate.)
            let end = s + skipped
            while s < end { ring[Int(s & Self.mask)] = 0; s += 1 }
            highest = ext
            if highest - nextToReport >= Int64(Self.capacity) { nextToReport = highest - Int64(Self.capacity) + 1 }
        } else if highest - ext >= Int64(Self.capacity) {
            return // older than anything remembered
        }
        let slot = Int(ext & Self.mask)
        if ring[slot] != 0, UInt16(truncatingIfNeeded: ring[slot]) == sequence { return } // duplicate
        ring[slot] = entry
        if ext < nextToReport { nextToReport = ext }
    }

    /// Arrival (microseconds) of an extended sequence number, if received.
    @inline(__always)
    func arrivalUs(_ ext: Int64) -> Int64? {
        let e = ring[Int(ext & Self.mask)]
        guard e != 0, UInt16(truncatingIfNeeded: e) == UInt16(truncatingIfNeeded: ext) else { return nil }
        return Int64(e >> 16)
    }

    /// Writes one feedback packet (RTPFB, FMT 15) covering the unreported
    /// packets from the oldest on, as many as fit in `capacity` bytes and
    /// in the delta range; returns its length (0: nothing to report). Call
    /// again while it returns more than 0 to report everything.
    package mutating func writeFeedback(_ p: UnsafeMutableRawPointer, capacity: Int, senderSsrc: UInt32) -> Int {
        guard started, nextToReport <= highest, capacity >= 32 else { return 0 }
        let start = nextToReport
        // Pass 1: statuses and deltas of as many packets as fit. Two-bit
        // status chunks (7 per chunk) bound the chunk bytes from above.
        var symbols = InlineArray<1024, UInt8>(repeating: 0)
        var deltas = InlineArray<1024, Int16>(repeating: 0)
        var n = 0
        var deltaBytes = 0
        var reference: Int64 = -1
        var previousTick: Int64 = 0
        var e = start
        while e <= highest, n < Self.capacity {
            var symbol: UInt8 = 0
            var delta: Int64 = 0
            // The first received packet sets the reference time, but only
            // once it is known to fit (see below).
            var newReference: Int64 = -1
            if let us = arrivalUs(e) {
                let tick = us / Self.tickUs
                var base = previousTick
                if reference < 0 {
                    newReference = tick >> 8
                    base = newReference << 8
                }
                delta = tick - base
                if delta >= 0 && delta <= 255 {
                    symbol = 1
                } else if delta >= Int64(Int16.min) && delta <= Int64(Int16.max) {
                    symbol = 2
                } else {
                    break // needs a new reference time: the next packet starts here
                }
            }
            let size = 20 + 2 * ((n + 1 + 6) / 7) + deltaBytes + Int(symbol)
            if (size + 3) & ~3 > capacity { break }
            if newReference >= 0 {
                reference = newReference
                previousTick = reference << 8
            }
            symbols[n] = symbol
            deltas[n] = Int16(truncatingIfNeeded: delta)
            deltaBytes += Int(symbol)
            if symbol != 0 { previousTick += delta }
            n += 1
            e += 1
        }
        guard n > 0 else { return 0 }
        // Only losses fit (a long run of them before the next arrival in a
        // small packet): report them, so feedback moves on; the reference
        // time is then arbitrary.
        if reference < 0 { reference = 0 }

        // Pass 2: the packet.
        RtcpWriter.put32(p, 4, senderSsrc)
        RtcpWriter.put32(p, 8, mediaSsrc)
        RtcpWriter.put16(p, 12, UInt16(truncatingIfNeeded: start))
        RtcpWriter.put16(p, 14, UInt16(n))
        RtcpWriter.put32(p, 16, UInt32(truncatingIfNeeded: reference) << 8 | UInt32(feedbackCount))
        var o = 20
        var i = 0
        while i < n {
            var run = 1
            while i + run < n, symbols[i + run] == symbols[i], run < 0x1FFF { run += 1 }
            if run >= 14 || i + run == n {
                // Run length chunk: 0 | symbol (2 bits) | length (13 bits).
                RtcpWriter.put16(p, o, UInt16(symbols[i]) << 13 | UInt16(run))
                i += run
            } else {
                var k = min(14, n - i)
                var large = false
                for j in i..<(i + k) where symbols[j] == 2 { large = true }
                var chunk: UInt16
                if !large {
                    // Status vector, one-bit symbols: 1 0 | 14 x received?
                    chunk = 0x8000
                    for j in 0..<k where symbols[i + j] != 0 { chunk |= 1 << (13 - j) }
                } else {
                    // Status vector, two-bit symbols: 1 1 | 7 x status.
                    k = min(7, n - i)
                    chunk = 0xC000
                    for j in 0..<k { chunk |= UInt16(symbols[i + j]) << (12 - 2 * j) }
                }
                RtcpWriter.put16(p, o, chunk)
                i += k
            }
            o += 2
        }
        for j in 0..<n {
            switch symbols[j] {
            case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: deltas[j]), toByteOffset: o, as: UInt8.self); o += 1
            case 2: RtcpWriter.put16(p, o, UInt16(bitPattern: deltas[j])); o += 2
            default: break
            }
        }
        let padding = (4 - o % 4) % 4
        if padding > 0 {
            for k in 0..<padding { p.storeBytes(of: 0, toByteOffset: o + k, as: UInt8.self) }
            o += padding
            p.storeBytes(of: UInt8(padding), toByteOffset: o - 1, as: UInt8.self)
        }
        RtcpWriter.header(p, count: RtcpFormat.transportCc, type: RtcpType.rtpfb, length: o)
        if padding > 0 { p.storeBytes(of: p.load(as: UInt8.self) | 0x20, as: UInt8.self) }
        nextToReport = start + Int64(n)
        feedbackCount &+= 1
        return o
    }
}
