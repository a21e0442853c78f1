import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The memory of a single-producer single-consumer ring that carries RTP
/// packets from one worker thread to another (or to itself) for
/// `pipeToRouter` within one process: no socket, no SRTP, one copy.
///
/// Each slot holds `[transport handle: UInt32][length: UInt32][packet]`.
/// A plain value of raw pointers, so the loops use it without reference
/// counting; `PipeRingOwner` owns the memory.
package struct PipeRing: @unchecked Sendable {
    package static let slotSize = 2048
    package static let headerSize = 8
    let head: UnsafeMutablePointer<Atomic<Int>>
    let tail: UnsafeMutablePointer<Atomic<Int>>
    let slots: UnsafeMutableRawPointer
    package let capacity: Int
    /// The eventfd of the worker that drains this ring.
    package let consumerEventFd: Int32

    /// Called on the producing thread. Returns false when the ring is full.
    @inline(__always)
    func push(transport: UInt32, _ packet: UnsafeRawPointer, length: Int) -> Bool {
        let t = tail.pointee.load(ordering: .relaxed)
        let h = head.pointee.load(ordering: .acquiring)
        guard t &- h < capacity, length <= Self.slotSize - Self.headerSize else { return false }
        let slot = slots + (t % capacity) * Self.slotSize
        slot.storeBytes(of: transport, as: UInt32.self)
        slot.storeBytes(of: UInt32(length), toByteOffset: 4, as: UInt32.self)
        (slot + Self.headerSize).copyMemory(from: packet, byteCount: length)
        tail.pointee.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Called on the consuming thread: hands each waiting packet (mutable,
    /// in place) to `body`, then frees the slots.
    @inline(__always)
    func drain(_ body: (UInt32, UnsafeMutableRawPointer, Int) -> Void) {
        var h = head.pointee.load(ordering: .relaxed)
        let t = tail.pointee.load(ordering: .acquiring)
        while h != t {
            let slot = slots + (h % capacity) * Self.slotSize
            let transport = slot.load(as: UInt32.self)
            let length = Int(slot.load(fromByteOffset: 4, as: UInt32.self))
            body(transport, slot + Self.headerSize, min(length, Self.slotSize - Self.headerSize))
            h &+= 1
        }
        head.pointee.store(h, ordering: .releasing)
    }
}

/// Owns a `PipeRing`'s memory. Both workers of a link keep it until their
/// threads end, so the memory outlives every use.
package final class PipeRingOwner: @unchecked Sendable {
    package let ring: PipeRing

    package init(capacity: Int, consumerEventFd: Int32) {
        let head = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        head.initialize(to: Atomic(0))
        let tail = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        tail.initialize(to: Atomic(0))
        var raw: UnsafeMutableRawPointer? = nil
        _ = posix_memalign(&raw, 4096, capacity * PipeRing.slotSize)
        ring = PipeRing(head: head, tail: tail, slots: raw!, capacity: capacity, consumerEventFd: consumerEventFd)
    }

    deinit {
        ring.head.deinitialize(count: 1)
        ring.head.deallocate()
        ring.tail.deinitialize(count: 1)
        ring.tail.deallocate()
        free(ring.slots)
    }
}
