import Testing
@testable import RingSFUForwarder

/// Transport-wide CC feedback on simulated time: arrivals go in with their
/// times, feedback packets come out and are read back by the RTCP parser.
@Suite("Transport-wide CC feedback")
struct TransportCcRecorderTests {
    /// A recorder with its own ring (kept alive by the returned buffer).
    final class Harness {
        let ring = UnsafeMutablePointer<UInt64>.allocate(capacity: TransportCcRecorder.capacity)
        var recorder: TransportCcRecorder
        init() { recorder = TransportCcRecorder(ring: ring); recorder.mediaSsrc = 0x1234 }
        deinit { ring.deallocate() }

        func arrive(_ sequence: UInt16, ms: Double) {
            recorder.record(sequence: sequence, arrivalNs: Int64(ms * 1_000_000))
        }

        /// The next feedback packet's bytes (empty: none).
        func feedback(capacity: Int = 1200) -> [UInt8] {
            var buf = [UInt8](repeating: 0xEE, count: capacity)
            let n = buf.withUnsafeMutableBytes { recorder.writeFeedback($0.baseAddress!, capacity: capacity, senderSsrc: 1) }
            return Array(buf[0..<n])
        }

        /// Every feedback packet until nothing is left.
        func allFeedback(capacity: Int = 1200) -> [[UInt8]] {
            var out: [[UInt8]] = []
            while true {
                let p = feedback(capacity: capacity)
                if p.isEmpty { return out }
                out.append(p)
            }
        }
    }

    struct Parsed {
        var header: Rtcp.TransportCcHeader
        /// (sequence, arrival in microseconds or nil when reported lost).
        var packets: [(UInt16, Int64?)]
    }

    /// Parses one feedback packet the way a sender would: reference time
    /// plus the running sum of deltas gives each arrival.
    func parse(_ bytes: [UInt8]) throws -> Parsed {
        var result: Parsed? = nil
        try bytes.withUnsafeBytes { raw in
            try Rtcp.forEach(raw.baseAddress!, count: raw.count) { (v) throws(RtcpError) in
                var packets: [(UInt16, Int64?)] = []
                var ticks: Int64 = 0
                let header = try Rtcp.forEachTransportCcPacket(v) { seq, delta in
                    if let delta { ticks += Int64(delta); packets.append((seq, ticks)) } else { packets.append((seq, nil)) }
                }
                let base = Int64(header.referenceTime) * 64_000
                result = Parsed(header: header, packets: packets.map { ($0.0, $0.1.map { base + $0 * 250 }) })
            }
        }
        return try #require(result)
    }

    @Test func runLengthChunkByHand() throws {
        let h = Harness()
        h.arrive(10, ms: 1000)
        h.arrive(11, ms: 1000.5)
        h.arrive(12, ms: 1001)
        // Ticks 4000, 4002, 4004; reference 15 (x 64 ms = tick 3840): deltas 160, 2, 2.
        let expected: [UInt8] = [0xAF, 205, 0, 6, 0, 0, 0, 1, 0, 0, 0x12, 0x34, 0, 10, 0, 3, 0, 0, 15, 0,
                                 0x20, 0x03, 160, 2, 2, 0, 0, 3]
        #expect(h.feedback() == expected)
        #expect(h.feedback().isEmpty)
        // The next one counts up and starts after the last reported.
        h.arrive(13, ms: 1001.25)
        let next = h.feedback()
        #expect(next[13] == 13 && next[15] == 1 && next[19] == 1)
    }

    @Test func oneBitVectorWithLoss() throws {
        let h = Harness()
        for seq: UInt16 in 0..<16 where seq != 3 && seq != 4 { h.arrive(seq, ms: 100 + Double(seq)) }
        let p = h.feedback()
        // Statuses: 1 1 1 0 0 1 x 9 | 1 1 -> a one-bit vector of 14, then a run of 2.
        #expect(Array(p[20..<24]) == [0xB9, 0xFF, 0x20, 0x02])
        let parsed = try parse(p)
        #expect(parsed.header.baseSequence == 0 && parsed.header.statusCount == 16 && parsed.header.receivedCount == 14)
        #expect(parsed.packets.filter { $0.1 == nil }.map(\.0) == [3, 4])
        for (seq, at) in parsed.packets where at != nil { #expect(at == 100_000 + Int64(seq) * 1000) }
    }

    @Test func largeAndNegativeDeltasUseTwoBitVectors() throws {
        let h = Harness()
        h.arrive(100, ms: 500)
        h.arrive(102, ms: 600)
        h.arrive(101, ms: 590) // reordered
        h.arrive(103, ms: 599) // arrived before 102: a negative delta
        let p = h.feedback()
        // 1 (small), 101: +360 ticks (large), 102: +40 (small), 103: -4 (large).
        #expect(p[20] & 0xC0 == 0xC0) // two-bit status vector
        let parsed = try parse(p)
        #expect(parsed.packets.map(\.0) == [100, 101, 102, 103])
        #expect(parsed.packets.map(\.1) == [500_000, 590_000, 600_000, 599_000])
    }

    @Test func sequenceWrapsAround() throws {
        let h = Harness()
        for (i, seq) in [UInt16(65534), 65535, 0, 1].enumerated() { h.arrive(seq, ms: 10 + Double(i)) }
        let parsed = try parse(h.feedback())
        #expect(parsed.header.baseSequence == 65534 && parsed.header.statusCount == 4)
        #expect(parsed.packets.map(\.0) == [65534, 65535, 0, 1])
        #expect(parsed.packets.allSatisfy { $0.1 != nil })
    }

    /// A long run of losses before the next arrival, in packets too small
    /// to hold both: the losses go out alone (so feedback moves on, found by
    /// the fuzzer), then the arrival with its own reference time.
    @Test func lossesThatFillAPacketGoOutAlone() throws {
        let h = Harness()
        h.arrive(100, ms: 10)
        _ = h.feedback()
        h.arrive(180, ms: 30) // 79 lost in between
        let packets = try h.allFeedback(capacity: 32).map(parse)
        #expect(packets.count >= 2)
        let statuses = packets.flatMap(\.packets)
        #expect(statuses.map(\.0) == (101...180).map { UInt16($0) }, "every number once, in order")
        #expect(statuses.dropLast().allSatisfy { $0.1 == nil } && statuses.last?.1 == 30_000)
        #expect(h.feedback().isEmpty)
    }

    @Test func lateArrivalIsReportedAgainAsReceived() throws {
        let h = Harness()
        h.arrive(1, ms: 10)
        h.arrive(3, ms: 12)
        let first = try parse(h.feedback())
        #expect(first.packets.map { $0.1 == nil } == [false, true, false])
        h.arrive(2, ms: 13)
        let second = try parse(h.feedback())
        #expect(second.header.baseSequence == 2)
        #expect(second.packets.map(\.0) == [2, 3] && second.packets.map(\.1) == [13_000, 12_000])
        // A duplicate keeps its first arrival and is not reported again.
        h.arrive(3, ms: 20)
        #expect(h.feedback().isEmpty)
    }

    @Test func deltaOutOfRangeStartsANewPacket() throws {
        let h = Harness()
        h.arrive(1, ms: 1000)
        h.arrive(2, ms: 1000 + 9000) // 36000 ticks: beyond a 16-bit delta
        let packets = h.allFeedback()
        #expect(packets.count == 2)
        let a = try parse(packets[0]), b = try parse(packets[1])
        #expect(a.packets.map(\.0) == [1] && b.packets.map(\.0) == [2])
        #expect(a.packets[0].1 == 1_000_000 && b.packets[0].1 == 10_000_000)
        #expect(b.header.feedbackCount == a.header.feedbackCount &+ 1)
    }

    @Test func splitToTheSizeLimit() throws {
        let h = Harness()
        // Every other packet lost, arrivals 80 ms apart: large deltas throughout.
        for i in 0..<400 where i % 2 == 0 { h.arrive(UInt16(i), ms: Double(i) * 40) }
        let packets = h.allFeedback(capacity: 200)
        #expect(packets.count > 2)
        var seen: [UInt16] = []
        for p in packets {
            #expect(p.count <= 200 && p.count % 4 == 0)
            let parsed = try parse(p)
            for (seq, at) in parsed.packets {
                seen.append(seq)
                if let at { #expect(at == Int64(seq) * 40_000) } else { #expect(seq % 2 == 1) }
            }
        }
        #expect(seen == (0..<399).map { UInt16($0) })
    }

    /// Random loss and reordering over a wrap: everything received is
    /// reported once with its arrival (to the 250 us tick), nothing else.
    @Test func randomisedRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        let h = Harness()
        var arrivals: [UInt16: Int64] = [:]
        var now = 1_000.0
        var reported: [UInt16: Int64] = [:]
        var order = Array(0..<3000).map { UInt16(truncatingIfNeeded: 64000 + $0) }
        // Local reordering: swap neighbours now and then.
        for i in stride(from: 1, to: order.count, by: 1) where rng.next() % 10 == 0 { order.swapAt(i, i - 1) }
        for (i, seq) in order.enumerated() {
            now += Double(rng.next() % 4000) / 1000
            if rng.next() % 20 != 0 {
                h.arrive(seq, ms: now)
                if arrivals[seq] == nil { arrivals[seq] = Int64(now * 1000) }
            }
            if i % 50 == 49 {
                for p in h.allFeedback() {
                    for (s, at) in try parse(p).packets { if let at { reported[s] = at } }
                }
            }
        }
        for p in h.allFeedback() { for (s, at) in try parse(p).packets { if let at { reported[s] = at } } }
        #expect(Set(reported.keys) == Set(arrivals.keys))
        for (s, at) in arrivals { #expect(abs(reported[s]! - at) < 250, "sequence \(s)") }
    }

    @Test func hostileJumpsStayBounded() throws {
        let h = Harness()
        var rng = SplitMix64(seed: 99)
        for _ in 0..<5000 {
            h.recorder.record(sequence: UInt16(truncatingIfNeeded: rng.next()), arrivalNs: Int64(rng.next() % 1_000_000_000_000))
            #expect(h.recorder.pending <= TransportCcRecorder.capacity)
        }
        // Whatever came in, the feedback parses.
        for p in h.allFeedback() { _ = try parse(p) }
    }
}
