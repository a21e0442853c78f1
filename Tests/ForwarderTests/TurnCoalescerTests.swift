import Testing
@testable import RingSFUForwarder

/// When the loop lets completions gather, on simulated time.
@Suite("Turn coalescer")
struct TurnCoalescerTests {
    static let ms: Int64 = 1_000_000

    @Test func gathersOnlyWhileAPacketIsDuePerWindow() {
        var c = TurnCoalescer(windowMicroseconds: 300, nowNs: 0, packetsIn: 0)
        #expect(!c.gather)
        // Decided once per 100 ms period, not before.
        c.turn(nowNs: 50 * Self.ms, packetsIn: 5_000)
        #expect(!c.gather)
        // 5k packets/s: 1.5 per 300 us window.
        c.turn(nowNs: 100 * Self.ms, packetsIn: 500)
        #expect(c.gather)
        // 1k packets/s: 0.3 per window: the plain wait.
        c.turn(nowNs: 200 * Self.ms, packetsIn: 600)
        #expect(!c.gather)
        // Exactly one per window (3334 packets/s) gathers; just under does not.
        c.turn(nowNs: 300 * Self.ms, packetsIn: 600 + 334)
        #expect(c.gather)
        c.turn(nowNs: 400 * Self.ms, packetsIn: 934 + 333)
        #expect(!c.gather)
        // A long quiet spell, then traffic: decided from the whole period.
        c.turn(nowNs: 10_000 * Self.ms, packetsIn: 1_267 + 500)
        #expect(!c.gather)
    }

    @Test func offNeverGathers() {
        var c = TurnCoalescer(windowMicroseconds: 0, nowNs: 0, packetsIn: 0)
        c.turn(nowNs: 100 * Self.ms, packetsIn: 1_000_000)
        #expect(!c.gather)
    }
}
