import Testing
@testable import RingSFUForwarder

/// `setMaxIncomingBitrate` announcements on simulated time.
@Suite("Incoming bitrate limiter")
struct IncomingBitrateLimiterTests {
    static let ms: Int64 = 1_000_000

    /// Packets every 100 ms for `seconds`; the bitrates announced and when (ms).
    static func run(_ l: inout IncomingBitrateLimiter, from startMs: Int64, seconds: Int64) -> [(Int64, UInt32)] {
        var out: [(Int64, UInt32)] = []
        var t = startMs
        while t < startMs + seconds * 1000 {
            if l.active, let b = l.due(nowNs: t * ms) { out.append((t, b)) }
            t += 100
        }
        return out
    }

    @Test func nothingWithoutACap() {
        var l = IncomingBitrateLimiter()
        #expect(!l.active)
        #expect(Self.run(&l, from: 0, seconds: 5).isEmpty)
        let due = l.set(0)
        #expect(!due, "lifting no cap announces nothing")
    }

    @Test func aCapGoesOutWithTheNextPacketThenEvery1500Ms() {
        var l = IncomingBitrateLimiter()
        let dueAtOnce = l.set(500_000)
        #expect(!dueAtOnce, "announced with incoming media, not at once")
        let sent = Self.run(&l, from: 1000, seconds: 4)
        #expect(sent.map(\.0) == [1000, 2600, 4200])
        #expect(sent.allSatisfy { $0.1 == 500_000 })
        // A new cap goes out with the next packet, not 1.5 s later.
        _ = l.set(300_000)
        let next = l.due(nowNs: 4300 * Self.ms)
        #expect(next == 300_000)
    }

    @Test func liftingTheCapSendsFourUnlimitedThenStops() {
        var l = IncomingBitrateLimiter()
        _ = l.set(500_000)
        _ = Self.run(&l, from: 0, seconds: 2)
        let dueAtOnce = l.set(0)
        #expect(dueAtOnce, "due at once")
        let sent = Self.run(&l, from: 2000, seconds: 10)
        #expect(sent.map(\.1) == [0, 0, 0, 0])
        #expect(sent.map(\.0) == [2000, 3600, 5200, 6800])
        #expect(!l.active)
    }
}
