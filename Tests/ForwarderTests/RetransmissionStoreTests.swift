import Testing
@testable import RingSFUForwarder

/// The packet store that answers NACKs, on simulated time: a packet is
/// resendable while it is among the newest `capacity` and no older than
/// the age limit.
@Suite("Retransmission store")
struct RetransmissionStoreTests {
    static let second: Int64 = 1_000_000_000

    @Test func agePastTheLimitIsAMiss() {
        var store = RetransmissionStore(slots: 8, slotSize: 64)
        let packet: [UInt8] = [0x80, 96, 0, 7] + Array(repeating: 1, count: 12)
        packet.withUnsafeBytes { store.store(stream: 3, sequence: 7, $0.baseAddress!, length: $0.count, nowNs: 10 * Self.second) }
        let held = store.lookup(stream: 3, sequence: 7, nowNs: 12 * Self.second, maxAgeNs: 2 * Self.second)
        #expect(held?.length == packet.count)
        #expect(held.map { Array(UnsafeRawBufferPointer(start: $0.packet, count: $0.length)) } == packet)
        #expect(store.lookup(stream: 3, sequence: 7, nowNs: 12 * Self.second + 1, maxAgeNs: 2 * Self.second) == nil, "1 ns too old")
        #expect(store.lookup(stream: 3, sequence: 7, nowNs: 11 * Self.second, maxAgeNs: Self.second / 2) == nil, "audio's half limit")
        #expect(store.lookup(stream: 4, sequence: 7, nowNs: 10 * Self.second, maxAgeNs: 2 * Self.second) == nil, "another stream")
    }

    @Test func theOldestIsOverwritten() {
        var store = RetransmissionStore(slots: 4, slotSize: 64)
        let packet = [UInt8](repeating: 0x80, count: 20)
        for seq: UInt16 in 0..<6 {
            packet.withUnsafeBytes { store.store(stream: 1, sequence: seq, $0.baseAddress!, length: $0.count, nowNs: 0) }
        }
        #expect(store.lookup(stream: 1, sequence: 1, nowNs: 0, maxAgeNs: Self.second) == nil)
        #expect(store.lookup(stream: 1, sequence: 5, nowNs: 0, maxAgeNs: Self.second) != nil)
    }
}
