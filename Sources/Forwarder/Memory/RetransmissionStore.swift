#if canImport(Glibc)
import Glibc
#endif

/// The worker's copies of recently received packets, for answering
/// NACKs: a FIFO of preallocated packet slots shared by all producers (the
/// oldest packet is overwritten first) and a direct-mapped index from
/// (receive stream, sequence number) to slot. An index collision only makes one
/// packet unavailable; every lookup verifies the slot's owner, so a stale
/// or overwritten entry is never returned. Nothing allocates after start.
package struct RetransmissionStore: ~Copyable {
    package struct Entry {
        var stream: Int32 = -1
        var sequence: UInt16 = 0
        var length: Int32 = 0
        var arrivalNs: Int64 = 0
    }

    package let slab: Slab
    private let entries: UnsafeMutablePointer<Entry>
    private let index: UnsafeMutablePointer<Int32>
    private let indexMask: Int
    private var next = 0
    package let capacity: Int

    package init(slots: Int, slotSize: Int) {
        capacity = max(1, slots)
        slab = Slab(slotSize: slotSize, count: capacity)
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: Entry(), count: capacity)
        var size = 1
        while size < 2 * capacity { size <<= 1 }
        indexMask = size - 1
        index = .allocate(capacity: size)
        index.initialize(repeating: -1, count: size)
    }

    deinit {
        entries.deallocate()
        index.deallocate()
    }

    @inline(__always)
    private func slotIndex(_ stream: Int, _ sequence: UInt16) -> Int {
        let k = UInt64(UInt32(truncatingIfNeeded: stream)) << 16 | UInt64(sequence)
        return Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 24) & indexMask
    }

    /// Keeps a copy of a packet (router numbering, producer sequence number).
    @inline(__always)
    package mutating func store(stream: Int, sequence: UInt16, _ packet: UnsafeRawPointer, length: Int, nowNs: Int64) {
        guard length <= slab.slotSize else { return }
        let s = next
        next = next + 1 == capacity ? 0 : next + 1
        entries[s] = Entry(stream: Int32(stream), sequence: sequence, length: Int32(length), arrivalNs: nowNs)
        slab.slot(s).copyMemory(from: packet, byteCount: length)
        index[slotIndex(stream, sequence)] = Int32(s)
    }

    /// The stored packet, if still held and it arrived at most `maxAgeNs`
    /// before `nowNs` (an older repair comes too late for the receiver's
    /// jitter buffer): its bytes and length.
    @inline(__always)
    package func lookup(stream: Int, sequence: UInt16, nowNs: Int64, maxAgeNs: Int64) -> (packet: UnsafeMutableRawPointer, length: Int)? {
        let s = Int(index[slotIndex(stream, sequence)])
        guard s >= 0 else { return nil }
        let e = entries[s]
        guard e.stream == Int32(stream), e.sequence == sequence, nowNs - e.arrivalNs <= maxAgeNs else { return nil }
        return (slab.slot(s), Int(e.length))
    }

    /// Drops a closed stream's packets (its index may be reused).
    package mutating func forget(stream: Int) {
        for s in 0..<capacity where entries[s].stream == Int32(stream) { entries[s].stream = -1 }
    }
}
