import Testing
@testable import RingSFUForwarder

/// A consumer's numbering on simulated time: syncs, hidden drops, late
/// packets, wrap-around and NACKs mapped back.
@Suite("RTP rewriter")
struct RtpRewriterTests {
    static let ms: Int64 = 1_000_000

    /// Forwards `inputs` in order (nil output: not forwarded), recording what
    /// was sent; a negative entry drops that input instead.
    static func run(_ r: inout RtpRewriter, _ steps: [Int], nowNs: Int64 = 1_000 * ms) -> [UInt16?] {
        var out: [UInt16?] = []
        for s in steps {
            if s < 0 {
                r.drop(UInt16(-s))
                continue
            }
            let o = r.output(for: UInt16(s))
            if let o { r.sent(output: o, timestamp: 0, nowNs: nowNs) }
            out.append(o)
        }
        return out
    }

    @Test func notStartedNumbersNothing() {
        var r = RtpRewriter()
        #expect(r.output(for: 5) == nil)
        #expect(r.input(forOutput: 5) == nil)
        r.drop(6) // ignored before a sync
        #expect(r.dropCount == 0)
    }

    @Test func firstSyncKeepsTheProducersNumbering() {
        var r = RtpRewriter()
        r.sync(input: 1000, timestamp: 9000, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        #expect(Self.run(&r, [1000, 1001, 1002]) == [1000, 1001, 1002])
        #expect(r.timestamp(for: 9000) == 9000)
    }

    /// Table: (steps after a sync at 100, expected outputs).
    static let dropCases: [([Int], [UInt16?])] = [
        // A dropped packet leaves no gap.
        ([100, 101, -102, 103, 104], [100, 101, 102, 103]),
        // Several drops in a row.
        ([100, -101, -102, -103, 104], [100, 101]),
        // A late packet from before a drop keeps the number it would have had.
        ([100, 102, -103, 104, 101], [100, 102, 103, 101]),
        // A late packet that was itself dropped... cannot arrive as media
        // again; a duplicate of a dropped number is not forwarded.
        ([100, -101, 102, 101], [100, 101, nil]),
        // A drop older than what was already numbered is not hidden.
        ([100, 102, -101, 103], [100, 102, 103]),
    ]

    @Test(arguments: dropCases)
    func dropsAreHidden(steps: [Int], expected: [UInt16?]) {
        var r = RtpRewriter()
        r.sync(input: 100, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        #expect(Self.run(&r, steps) == expected)
    }

    @Test func resyncContinuesAfterTheLastSent() {
        var r = RtpRewriter()
        r.sync(input: 5000, timestamp: 1000, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        var ts: UInt32 = 1000
        for i in 0..<10 {
            let o = r.output(for: 5000 + UInt16(i))!
            r.sent(output: o, timestamp: r.timestamp(for: ts), nowNs: 1_000 * Self.ms + Int64(i) * 33 * Self.ms)
            ts &+= 3000
        }
        #expect(r.lastOutput == 5009)
        // A switch to another stream (other numbering, other clock base)
        // 100 ms after the last packet.
        r.sync(input: 60_000, timestamp: 4_000_000_000, continueTimestamps: true, nowNs: 1_000 * Self.ms + 9 * 33 * Self.ms + 100 * Self.ms, clockRate: 90_000)
        #expect(r.output(for: 60_000) == 5010)
        #expect(r.timestamp(for: 4_000_000_000) == 1000 + 9 * 3000 + 9000, "100 ms on at 90 kHz")
        // Without continuing timestamps (a resume), the offset stays.
        var s = RtpRewriter()
        s.sync(input: 1, timestamp: 10, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        s.sent(output: s.output(for: 1)!, timestamp: 10, nowNs: 1)
        s.sync(input: 50, timestamp: 500, continueTimestamps: false, nowNs: 5 * Self.ms, clockRate: 90_000)
        #expect(s.output(for: 50) == 2 && s.timestamp(for: 500) == 500)
    }

    @Test func wrapsAround() {
        var r = RtpRewriter()
        r.sync(input: 65_534, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        #expect(Self.run(&r, [65_534, 65_535, 0, -1, 2, 3]) == [65_534, 65_535, 0, 1, 2])
        #expect(r.input(forOutput: 1) == 2)
        #expect(r.input(forOutput: 0) == 0)
        #expect(r.input(forOutput: 65_535) == 65_535)
    }

    @Test func nacksMapBackAcrossDrops() {
        var r = RtpRewriter()
        r.sync(input: 200, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        let out = Self.run(&r, [200, 201, -202, -203, 204, 205, -206, 207])
        #expect(out == [200, 201, 202, 203, 204])
        // Output -> input: every forwarded packet, and nothing else.
        #expect(r.input(forOutput: 200) == 200)
        #expect(r.input(forOutput: 201) == 201)
        #expect(r.input(forOutput: 202) == 204)
        #expect(r.input(forOutput: 203) == 205)
        #expect(r.input(forOutput: 204) == 207)
        #expect(r.input(forOutput: 205) == nil, "not sent yet")
        #expect(r.input(forOutput: 199) == nil, "before this numbering")
    }

    @Test func nacksOnlyWithinTheCurrentNumbering() {
        var r = RtpRewriter()
        r.sync(input: 10, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        _ = Self.run(&r, [10, 11, 12])
        r.sync(input: 40_000, timestamp: 0, continueTimestamps: true, nowNs: 10 * Self.ms, clockRate: 90_000)
        _ = Self.run(&r, [40_000, 40_001])
        #expect(r.input(forOutput: 14) == 40_001)
        #expect(r.input(forOutput: 13) == 40_000)
        #expect(r.input(forOutput: 12) == nil, "sent under the previous numbering")
    }

    /// A dropped layer's packets come in runs (SVC upper layers, dropped
    /// temporal layers): long runs take one entry each, so NACKs keep
    /// mapping back across many of them.
    @Test func runsOfDropsKeepNacksMapping() {
        var r = RtpRewriter()
        r.sync(input: 65_501, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        // 12 pictures: 3 packets forwarded, then 30 dropped (across the wrap).
        var steps: [Int] = []
        var input = 65_501 // (input 0 falls on a forwarded packet: the helper marks drops by sign)
        for _ in 0..<12 {
            steps += (0..<3).map { input + $0 }
            steps += (3..<33).map { -(input + $0) }
            input += 33
        }
        let out = Self.run(&r, steps.map { $0 >= 0 ? $0 % 65_536 : -((-$0) % 65_536) })
        #expect(out == (0..<36).map { UInt16(truncatingIfNeeded: 65_501 + $0) }, "continuous output")
        #expect(r.dropCount == 12)
        // Every forwarded packet still maps back, the oldest too.
        #expect(r.input(forOutput: 65_501) == 65_501)
        #expect(r.input(forOutput: 65_504) == UInt16(truncatingIfNeeded: 65_501 + 33))
        #expect(r.input(forOutput: UInt16(truncatingIfNeeded: 65_501 + 35)) == UInt16(truncatingIfNeeded: 65_501 + 11 * 33 + 2))
        // A late dropped packet is still not numbered.
        #expect(r.output(for: UInt16(truncatingIfNeeded: 65_501 + 40)) == nil)
    }

    @Test func forgottenDropsBoundLatePackets() {
        var r = RtpRewriter()
        r.sync(input: 0, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
        // Forwarded/dropped pairs: four more drops than the rewriter remembers.
        let n = RtpRewriter.maxDrops + 4
        var steps: [Int] = []
        for i in 0..<n { steps += [1 + 2 * i, -(2 + 2 * i)] }
        let out = Self.run(&r, [0] + steps)
        #expect(out == (0...n).map { UInt16($0) })
        #expect(r.dropCount == RtpRewriter.maxDrops)
        // The newest forwarded ones still map back; the oldest cannot.
        #expect(r.input(forOutput: UInt16(n)) == UInt16(2 * n - 1))
        #expect(r.input(forOutput: UInt16(n - 1)) == UInt16(2 * n - 3))
        #expect(r.input(forOutput: 2) == nil)
        // A late packet from before the oldest remembered drop is not numbered.
        #expect(r.output(for: 3) == nil)
        #expect(r.output(for: UInt16(2 * n - 3)) == UInt16(n - 1))
    }

    /// Random operation sequences: every forwarded output is unique and
    /// maps back to its input; outputs of increasing inputs increase.
    @Test func randomSequencesKeepTheInvariants() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200 {
            var r = RtpRewriter()
            let start = UInt16(truncatingIfNeeded: rng.next())
            r.sync(input: start, timestamp: 0, continueTimestamps: false, nowNs: 0, clockRate: 90_000)
            var input = start
            var sent: [(UInt16, UInt16)] = []
            var previous: UInt16? = nil
            for _ in 0..<300 {
                input &+= 1 + UInt16(rng.next() % 3) // gaps are real losses
                if rng.next() % 4 == 0 {
                    r.drop(input)
                    continue
                }
                guard let o = r.output(for: input) else { Issue.record("newest input not numbered"); return }
                if let previous { #expect(RtpRewriter.newer(o, than: previous)) }
                previous = o
                r.sent(output: o, timestamp: 0, nowNs: 1)
                sent.append((input, o))
            }
            // The recent ones map back exactly (older ones may be forgotten).
            for (i, o) in sent.suffix(8) { #expect(r.input(forOutput: o) == i) }
        }
    }
}

