import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// A page-aligned block of fixed-size slots, allocated once and never grown.
/// Used for receive buffers, send packet slots and send message headers.
package struct Slab: ~Copyable {
    package let base: UnsafeMutableRawPointer
    package let slotSize: Int
    package let count: Int

    package init(slotSize: Int, count: Int) {
        precondition(slotSize > 0 && count > 0)
        self.slotSize = slotSize
        self.count = count
        var raw: UnsafeMutableRawPointer? = nil
        let rc = posix_memalign(&raw, 4096, slotSize * count)
        precondition(rc == 0 && raw != nil, "slab allocation failed")
        memset(raw!, 0, slotSize * count)
        self.base = raw!
    }

    @inline(__always)
    package func slot(_ index: Int) -> UnsafeMutableRawPointer {
        base + index &* slotSize
    }

    deinit { free(base) }
}

/// A LIFO stack of free slot indices over preallocated memory. LIFO keeps
/// recently used (cache-warm) slots in play. Pop on empty returns -1.
package struct FreeList: ~Copyable {
    private let stack: UnsafeMutablePointer<Int32>
    package private(set) var available: Int
    package let capacity: Int

    package init(capacity: Int) {
        self.capacity = capacity
        stack = .allocate(capacity: capacity)
        for i in 0..<capacity { stack[i] = Int32(capacity - 1 - i) }
        available = capacity
    }

    @inline(__always)
    package mutating func pop() -> Int32 {
        guard available > 0 else { return -1 }
        available &-= 1
        return stack[available]
    }

    @inline(__always)
    package mutating func push(_ index: Int32) {
        // A double free would corrupt the stack; refuse it loudly in debug.
        assert(available < capacity)
        guard available < capacity else { return }
        stack[available] = index
        available &+= 1
    }

    deinit { stack.deallocate() }
}
