import Synchronization

/// Names a row of one of the forwarder's preallocated tables together with
/// the generation of the entity that holds it. The control plane allocates
/// it; commands name entities by it, rows remember it, and every event
/// carries it back, so an event still in flight for a closed entity never
/// reaches the next owner of the same row (its generation differs).
package struct Handle: Hashable, Sendable, CustomStringConvertible {
    /// Low bits: the row; high bits: the generation (wrapping).
    package static let indexBits: UInt32 = 20
    package static let indexMask: UInt32 = (1 << indexBits) - 1
    /// Rows a table may have at most.
    package static let maxRows = Int(indexMask)

    package let raw: UInt32

    package init(raw: UInt32) { self.raw = raw }
    package init(index: Int, generation: UInt32) {
        raw = UInt32(index) & Self.indexMask | generation << Self.indexBits
    }

    /// The table row.
    @inline(__always) package var index: Int { Int(raw & Self.indexMask) }
    package var generation: UInt32 { raw >> Self.indexBits }
    /// No entity (a row's handle while it is free).
    package static let none = Handle(raw: UInt32.max)

    package var description: String { "\(index).\(generation)" }
}

/// Allocation of handles, done on the control side. A row is given back
/// when its entity closes and handed out again oldest-freed first with the
/// next generation; commands are applied in order, so a reused row's create
/// is always processed after the old entity's close.
package final class HandleSpace: Sendable {
    private struct State {
        /// Freed rows, oldest first (a ring over `free`).
        var free: [UInt32] = []
        var head = 0
        var next: UInt32 = 0
        /// Per row: its current generation and whether it is taken.
        var generations: [UInt32] = []
        var taken: [Bool] = []
    }
    private let state: Mutex<State>
    package let capacity: UInt32

    package init(capacity: UInt32) {
        self.capacity = min(capacity, UInt32(Handle.maxRows))
        state = Mutex(State())
    }

    /// Returns nil when every row is taken.
    package func allocate() -> Handle? {
        state.withLock { s in
            let index: Int
            if s.head < s.free.count {
                index = Int(s.free[s.head])
                s.head += 1
                // Drop the consumed prefix once it dominates.
                if s.head > 64 && s.head * 2 > s.free.count {
                    s.free.removeFirst(s.head)
                    s.head = 0
                }
            } else {
                guard s.next < capacity else { return nil }
                index = Int(s.next)
                s.next += 1
                s.generations.append(0)
                s.taken.append(false)
            }
            s.generations[index] = (s.generations[index] &+ 1) & (UInt32.max >> Handle.indexBits)
            s.taken[index] = true
            return Handle(index: index, generation: s.generations[index])
        }
    }

    /// Gives the row back; a stale handle (released twice) is ignored.
    package func release(_ handle: Handle) {
        state.withLock { s in
            let i = handle.index
            guard i < s.taken.count, s.taken[i], s.generations[i] == handle.generation else { return }
            s.taken[i] = false
            s.free.append(UInt32(i))
        }
    }
}
