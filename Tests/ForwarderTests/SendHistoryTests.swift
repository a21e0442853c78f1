import Testing
@testable import RingSFUForwarder

/// The transport-wide send history: lookups by number, and the bytes still
/// unreported (what an overrun link's queue holds) that key frame requests
/// wait on.
@Suite("Send history")
struct SendHistoryTests {
    static func history() -> (SendHistory, UnsafeMutableRawPointer) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: SendHistory.ringBytes, alignment: 16)
        return (SendHistory(memory: memory), memory)
    }

    @Test func bytesInFlightAreTheUnreportedOnes() {
        var (h, memory) = Self.history()
        defer { memory.deallocate() }
        for i in 0..<10 { _ = h.record(sendNs: Int64(i) * 1_000_000, bytes: 1000) }
        #expect(h.bytesInFlight() == 10_000)
        h.reported(4)
        #expect(h.bytesInFlight() == 6000)
        // An older report (feedback reordered) changes nothing.
        h.reported(2)
        #expect(h.bytesInFlight() == 6000)
        // A number never sent is not taken as reported.
        h.reported(500)
        #expect(h.bytesInFlight() == 6000)
        h.reported(10)
        #expect(h.bytesInFlight() == 0)
        #expect(h.lookup(3)?.bytes == 1000)
    }

    @Test func theWalkIsBoundedAcrossTheWrap() {
        var (h, memory) = Self.history()
        defer { memory.deallocate() }
        // Far more than the ring holds, across the 16-bit wrap, none reported.
        for _ in 0..<70_000 { _ = h.record(sendNs: 0, bytes: 100) }
        #expect(h.bytesInFlight() == SendHistory.capacity * 100)
        h.reported(h.next &- 1)
        #expect(h.bytesInFlight() == 0)
    }
}
