import Testing
@testable import RingSFUForwarder

/// Held key frame requests wait for the link's queue to drain, on
/// simulated time.
@Suite("Drain gate")
struct DrainGateTests {
    static let ms: Int64 = 1_000_000

    @Test func waitsUntilTheQueueWouldDrainWithin100ms() {
        var g = DrainGate()
        var due = g.release(nowNs: 0, bytesInFlight: 0, estimate: 500_000)
        #expect(!due, "nobody waits")
        let first = g.wait(nowNs: 0), second = g.wait(nowNs: 10 * Self.ms)
        #expect(first == DrainGate.maxWaitNs)
        #expect(second == nil, "one wait, one deadline")
        // 64 KB queued at 500 kbps: about a second.
        due = g.release(nowNs: 100 * Self.ms, bytesInFlight: 64_000, estimate: 500_000)
        #expect(!due)
        due = g.release(nowNs: 600 * Self.ms, bytesInFlight: 8_000, estimate: 500_000)
        #expect(!due, "128 ms still")
        due = g.release(nowNs: 700 * Self.ms, bytesInFlight: 6_000, estimate: 500_000)
        #expect(due, "96 ms")
        #expect(g.waiting == 0)
        due = g.release(nowNs: 800 * Self.ms, bytesInFlight: 0, estimate: 500_000)
        #expect(!due, "released once")
    }

    @Test func theDeadlineReleasesAQueueThatNeverDrains() {
        var g = DrainGate()
        _ = g.wait(nowNs: 0)
        var due = g.release(nowNs: DrainGate.maxWaitNs - 1, bytesInFlight: 1_000_000, estimate: 500_000)
        #expect(!due)
        due = g.release(nowNs: DrainGate.maxWaitNs, bytesInFlight: 1_000_000, estimate: 500_000)
        #expect(due)
        // The timer's release (feedback stopped: nothing more is reported).
        _ = g.wait(nowNs: 2 * DrainGate.maxWaitNs)
        #expect(g.deadlineNs == 3 * DrainGate.maxWaitNs)
        due = g.release(nowNs: 3 * DrainGate.maxWaitNs, bytesInFlight: 1_000_000, estimate: 500_000, force: true)
        #expect(due)
    }
}
