/// A hashed timing wheel with preallocated timer nodes. The loop advances it
/// with the current time and asks it for the next deadline to bound its wait.
/// Scheduling and firing never allocate; a full wheel refuses new timers.
package struct TimerWheel: ~Copyable {
    package struct Timer: Equatable, Sendable {
        package var kind: UInt16
        package var argument: UInt32
    }

    private struct Node {
        var deadlineNs: Int64
        var timer: Timer
        var next: Int32
        var prev: Int32
        var slot: Int32
        var active: Bool
    }

    package let tickNs: Int64
    private let slotCount: Int
    private let heads: UnsafeMutablePointer<Int32>
    private let nodes: UnsafeMutablePointer<Node>
    private var free: FreeList
    private var currentTick: Int64
    package private(set) var activeCount = 0
    /// The earliest deadline, when known (scheduling lowers it; firing or
    /// cancelling the timer that held it makes it unknown until rescanned),
    /// so the loop's per-turn question rarely scans the wheel.
    private var cachedNext: Int64? = nil
    private var cacheValid = true

    package init(tickNs: Int64 = 5_000_000, slots: Int = 512, capacity: Int = 4096, nowNs: Int64) {
        self.tickNs = tickNs
        self.slotCount = slots
        heads = .allocate(capacity: slots)
        heads.initialize(repeating: -1, count: slots)
        nodes = .allocate(capacity: capacity)
        nodes.initialize(repeating: Node(deadlineNs: 0, timer: Timer(kind: 0, argument: 0), next: -1, prev: -1, slot: -1, active: false), count: capacity)
        free = FreeList(capacity: capacity)
        currentTick = nowNs / tickNs
    }

    deinit {
        heads.deallocate()
        nodes.deallocate()
    }

    /// Schedules `timer` at `deadlineNs`. Returns an id for `cancel`, or -1.
    @discardableResult
    package mutating func schedule(_ timer: Timer, at deadlineNs: Int64) -> Int32 {
        let id = free.pop()
        guard id >= 0 else { return -1 }
        var tick = deadlineNs / tickNs
        if tick <= currentTick { tick = currentTick + 1 }
        let slot = Int32(tick % Int64(slotCount))
        nodes[Int(id)] = Node(deadlineNs: deadlineNs, timer: timer, next: heads[Int(slot)], prev: -1, slot: slot, active: true)
        if heads[Int(slot)] >= 0 { nodes[Int(heads[Int(slot)])].prev = id }
        heads[Int(slot)] = id
        activeCount += 1
        if cacheValid { cachedNext = min(cachedNext ?? .max, deadlineNs) }
        return id
    }

    package mutating func cancel(_ id: Int32) {
        guard id >= 0, id < Int32(free.capacity), nodes[Int(id)].active else { return }
        unlink(id)
        free.push(id)
    }

    private mutating func unlink(_ id: Int32) {
        let n = nodes[Int(id)]
        if cacheValid, cachedNext == n.deadlineNs { cacheValid = false }
        if n.prev >= 0 { nodes[Int(n.prev)].next = n.next } else { heads[Int(n.slot)] = n.next }
        if n.next >= 0 { nodes[Int(n.next)].prev = n.prev }
        nodes[Int(id)].active = false
        activeCount -= 1
    }

    /// Fires, in no particular order within a tick, the timers due by
    /// `nowNs`, at most `limit` of them; returns how many fired. A caller
    /// that got `limit` calls again for the rest.
    @discardableResult
    package mutating func advance(to nowNs: Int64, limit: Int = .max, _ fire: (Timer) -> Void) -> Int {
        let target = nowNs / tickNs
        guard activeCount > 0 else { currentTick = max(currentTick, target); return 0 }
        // Never walk more than one full revolution: later ticks share slots.
        let start = currentTick
        let end = min(target, start + Int64(slotCount))
        var tick = start
        var fired = 0
        while tick <= end {
            let slot = Int(tick % Int64(slotCount))
            var id = heads[slot]
            while id >= 0 {
                if fired == limit {
                    // Stopped early: resume from this tick next time.
                    currentTick = tick
                    return fired
                }
                let node = nodes[Int(id)]
                let next = node.next
                if node.deadlineNs <= nowNs {
                    unlink(id)
                    free.push(id)
                    fire(node.timer)
                    fired += 1
                }
                id = next
            }
            tick += 1
        }
        currentTick = max(currentTick, target)
        return fired
    }

    /// The earliest pending deadline, or nil with no timers. Scans one
    /// revolution at most.
    package mutating func nextDeadline() -> Int64? {
        guard activeCount > 0 else {
            cachedNext = nil
            cacheValid = true
            return nil
        }
        if cacheValid { return cachedNext }
        var best: Int64 = .max
        for s in 0..<slotCount {
            var id = heads[s]
            while id >= 0 {
                best = min(best, nodes[Int(id)].deadlineNs)
                id = nodes[Int(id)].next
            }
        }
        cachedNext = best == .max ? nil : best
        cacheValid = true
        return cachedNext
    }
}
