import Synchronization

/// Allocation of small integer handles (indices into the forwarder's
/// preallocated tables), done on the control side. A handle is given back
/// when its entity closes; commands are applied in order, so a reused
/// handle's create is always processed after the old entity's close.
package final class HandleSpace: Sendable {
    private struct State {
        var free: [UInt32]
        var next: UInt32
    }
    private let state: Mutex<State>
    package let capacity: UInt32

    package init(capacity: UInt32) {
        self.capacity = capacity
        state = Mutex(State(free: [], next: 0))
    }

    /// Returns nil when every handle is taken.
    package func allocate() -> UInt32? {
        state.withLock { s in
            if let h = s.free.popLast() { return h }
            guard s.next < capacity else { return nil }
            defer { s.next += 1 }
            return s.next
        }
    }

    package func release(_ handle: UInt32) {
        state.withLock { $0.free.append(handle) }
    }
}
