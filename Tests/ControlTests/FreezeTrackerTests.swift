import Testing
import RingSFUPerfKit

/// The load tester's freeze count on simulated time: what a decoder would
/// show for a track, from its packets alone.
@Suite("Freeze tracker")
struct FreezeTrackerTests {
    static let frameNs: Int64 = 33_333_333

    /// `seconds` of 30 fps frames of 3 packets, a key frame every 2 s;
    /// `lose(frame, packet)` drops packets. Returns the tracker.
    func run(seconds: Int, from start: Int64 = 0, lose: (Int, Int) -> Bool = { _, _ in false }, into tracker: inout FreezeTracker, seq: inout UInt16) {
        for f in 0..<(seconds * 30) {
            let t = start + Int64(f) * Self.frameNs
            for k in 0..<3 {
                defer { seq &+= 1 }
                if lose(f, k) { continue }
                tracker.packet(1, seq: seq, marker: k == 2, keyStart: f % 60 == 0 && k == 0, nowNs: t + Int64(k) * 1_000_000)
            }
        }
    }

    @Test func aSteadyTrackNeverFreezes() {
        var tracker = FreezeTracker(), seq: UInt16 = 65_000 // wraps on the way
        run(seconds: 5, into: &tracker, seq: &seq)
        let f = tracker.figures(nowNs: 5 * 1_000_000_000 - Self.frameNs)
        #expect(f.count == 0 && f.frozenMs == 0)
    }

    @Test func aLostPacketFreezesUntilTheNextKeyFrame() {
        var tracker = FreezeTracker(), seq: UInt16 = 0
        // One packet of frame 75 (2.5 s) lost: frames 75...119 undecodable,
        // the key frame at 4 s (frame 120) ends the freeze.
        run(seconds: 5, lose: { f, k in f == 75 && k == 1 }, into: &tracker, seq: &seq)
        let f = tracker.figures(nowNs: 5 * 1_000_000_000 - Self.frameNs)
        #expect(f.count == 1)
        #expect(abs(f.frozenMs - 46 * 33.33) < 5, "\(f.frozenMs) ms: from frame 74 to frame 120")
    }

    @Test func aTrackThatStopsIsFrozenAtTheEnd() {
        var tracker = FreezeTracker(), seq: UInt16 = 0
        run(seconds: 1, into: &tracker, seq: &seq)
        #expect(tracker.figures(nowNs: 1_100_000_000).count == 0, "100 ms after the last frame: not yet")
        let f = tracker.figures(nowNs: 2_000_000_000)
        #expect(f.count == 1 && f.frozenMs > 900)
        // A new window forgets past freezes, not the track's state.
        tracker.resetCounts()
        #expect(tracker.figures(nowNs: 2_000_000_000).count == 1, "still frozen now")
    }

    @Test func beforeItsFirstKeyFrameATrackHasNotStarted() {
        var tracker = FreezeTracker(), seq: UInt16 = 0
        // Joining at frame 10: nothing decodable until the key frame at 2 s,
        // which is start-up time, not a freeze.
        run(seconds: 4, lose: { f, _ in f < 10 }, into: &tracker, seq: &seq)
        #expect(tracker.figures(nowNs: 4 * 1_000_000_000 - Self.frameNs).count == 0)
    }

    /// A lost packet resent within 60 ms (it arrives out of order, behind
    /// the next frames' packets) completes its frame: no freeze; 400 ms
    /// later, the frames behind it wait and then decode at once: one
    /// freeze of about the wait.
    @Test(arguments: [(60, 0), (400, 1)])
    func aRepair(afterMs: Int, freezes: Int) {
        var tracker = FreezeTracker(), seq: UInt16 = 0
        var repaired = false
        for f in 0..<90 {
            let t = Int64(f) * Self.frameNs
            if !repaired && t >= 20 * Self.frameNs + Int64(afterMs) * 1_000_000 {
                // Frame 20's middle packet.
                tracker.packet(1, seq: 61, marker: false, keyStart: false, nowNs: t)
                repaired = true
            }
            for k in 0..<3 {
                defer { seq &+= 1 }
                if f == 20 && k == 1 { continue }
                tracker.packet(1, seq: seq, marker: k == 2, keyStart: f % 60 == 0 && k == 0, nowNs: t + Int64(k) * 1_000_000)
            }
        }
        let f = tracker.figures(nowNs: 90 * Self.frameNs)
        #expect(f.count == freezes, "\(f.count) freezes, \(f.frozenMs) ms")
        if freezes > 0 { #expect(abs(f.frozenMs - 433) < 40, "\(f.frozenMs) ms: from frame 19 to the repair") }
    }

    /// Packets out of order within a frame (no loss) are no freeze either.
    @Test func reorderingIsNoFreeze() {
        var tracker = FreezeTracker()
        for f in 0..<60 {
            let t = Int64(f) * Self.frameNs, base = UInt16(f * 3)
            for k in [0, 2, 1] {
                tracker.packet(1, seq: base + UInt16(k), marker: k == 2, keyStart: f == 0 && k == 0, nowNs: t + Int64(k) * 1_000_000)
            }
        }
        #expect(tracker.figures(nowNs: 60 * Self.frameNs).count == 0)
    }
}
