/// What was sent on a transport under each transport-wide sequence number
/// (send time, size, probe cluster), for matching the receiver's feedback.
/// Entries live in a caller-provided ring of `capacity` slots, so memory
/// per transport is fixed; an entry overwritten by a newer number, or a
/// number never sent, is simply not found.
package struct SendHistory {
    /// About 2 s of a 3 Mbps transport at 1200-byte packets, several
    /// feedback intervals over.
    package static let capacity = 2048
    /// Bytes of ring memory a history needs.
    package static let ringBytes = capacity * 16

    struct Entry {
        var sendNs: Int64
        var bytes: UInt32
        var sequence: UInt16
        var cluster: UInt8
        var valid: UInt8
    }

    private let ring: UnsafeMutablePointer<Entry>
    /// The next transport-wide sequence number to send.
    package private(set) var next: UInt16 = 1
    /// The newest number a feedback reported (received or lost).
    package private(set) var newestReported: UInt16 = 0

    /// `memory` must hold `ringBytes`; it is cleared here.
    package init(memory: UnsafeMutableRawPointer) {
        ring = memory.bindMemory(to: Entry.self, capacity: Self.capacity)
        ring.initialize(repeating: Entry(sendNs: 0, bytes: 0, sequence: 0, cluster: 0, valid: 0), count: Self.capacity)
    }

    /// Numbers a packet and remembers it; returns its number.
    package mutating func record(sendNs: Int64, bytes: Int, cluster: UInt8 = 0) -> UInt16 {
        let sequence = next
        next &+= 1
        ring[Int(sequence) % Self.capacity] = Entry(sendNs: sendNs, bytes: UInt32(clamping: bytes), sequence: sequence, cluster: cluster, valid: 1)
        return sequence
    }

    /// A feedback reported `sequence`.
    package mutating func reported(_ sequence: UInt16) {
        // Newer than the newest reported, and not past what was sent.
        if sequence &- newestReported < 0x8000, next &- sequence <= 0x8000 { newestReported = sequence }
    }

    /// Bytes sent after the newest reported number: still in the link's
    /// queue, or lost without a report yet. Walks those entries newest
    /// first (at most the ring), so it is for occasional use.
    package func bytesInFlight() -> Int {
        var total = 0
        var s = next &- 1
        var walked = 0
        while s != newestReported, walked < Self.capacity {
            if let e = lookup(s) { total += e.bytes }
            s &-= 1
            walked += 1
        }
        return total
    }

    /// What was sent under `sequence`, if still held.
    package func lookup(_ sequence: UInt16) -> (sendNs: Int64, bytes: Int, cluster: UInt8)? {
        let e = ring[Int(sequence) % Self.capacity]
        guard e.valid != 0, e.sequence == sequence else { return nil }
        return (e.sendNs, Int(e.bytes), e.cluster)
    }
}
