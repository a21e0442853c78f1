/// Sharing a transport's available outgoing bitrate among its consumers,
/// with mediasoup's priority semantics: what cannot be shed (audio,
/// non-simulcast video) is taken first, then simulcast consumers are raised
/// one spatial layer at a time in rounds, higher priority first, a consumer
/// of priority p getting p steps per round, each step only if the layer's
/// extra bitrate fits. Nothing is allocated; the caller owns the memory.

/// One consumer's part in an allocation.
package struct AllocationEntry: Sendable {
    /// mediasoup's `consumer.setPriority` (1 to 255).
    package var priority: UInt8 = 1
    /// Bitrate taken whatever happens (audio, simple video), bps.
    package var fixedBitrate = 0
    /// Simulcast: the bitrate each spatial layer is sent at now (0: the
    /// layer is not being sent), lowest first.
    package var layerBitrates = InlineArray<4, Int>(repeating: 0)
    package var layerCount = 0
    /// The highest layer the consumer wants (its preferred layer).
    package var maxLayer = 3
    /// The layer applied now (-1: none): raising above it needs the margin.
    package var applied = -1
    /// How much more than a layer's extra bitrate raising to it needs.
    package var upgradeMargin = LayerAllocator.upgradeMargin
    /// Out: the layer allocated (-1: none).
    package var layer = -1

    package init() {}
}

package enum LayerAllocator {
    /// Raising above the applied layer needs room for 15 % of the layer's
    /// bitrate beyond it, so that a rate at the edge does not switch
    /// back and forth.
    package static let upgradeMargin = 0.15
    /// The margin for a while after congestion moved a consumer down:
    /// the link just proved smaller than the estimate said.
    package static let congestedUpgradeMargin = 0.6

    /// Allocates `available` bps; returns what the allocation uses. `order`
    /// is scratch space of the same count as `entries`.
    @discardableResult
    package static func allocate(available: Int, _ entries: UnsafeMutableBufferPointer<AllocationEntry>, order: UnsafeMutableBufferPointer<Int32>) -> Int {
        let n = min(entries.count, order.count)
        var remaining = available
        for i in 0..<n {
            remaining -= entries[i].fixedBitrate
            entries[i].layer = -1 // everything starts from no layer
        }
        // Simulcast consumers by descending priority (insertion sort: n is small, nothing allocated).
        var count = 0
        for i in 0..<n where entries[i].layerCount > 0 {
            var j = count
            while j > 0, entries[Int(order[j - 1])].priority < entries[i].priority {
                order[j] = order[j - 1]
                j -= 1
            }
            order[j] = Int32(i)
            count += 1
        }
        var progress = true
        while progress {
            progress = false
            for k in 0..<count {
                let i = Int(order[k])
                for _ in 0..<max(1, Int(entries[i].priority)) {
                    guard let (next, extra) = nextLayer(entries[i]) else { break }
                    // Above the applied layer: room for the layer plus a
                    // share of its whole rate (its key frame comes first).
                    let needed = next > entries[i].applied ? extra + Int(Double(entries[i].layerBitrates[next]) * entries[i].upgradeMargin) : extra
                    guard needed <= remaining else { break }
                    remaining -= extra
                    entries[i].layer = next
                    progress = true
                }
            }
        }
        return available - remaining
    }

    /// The highest layer being sent up to `layer` (0 when none is).
    package static func highestSending(_ e: AllocationEntry, upTo layer: Int) -> Int {
        var top = min(layer, e.layerCount - 1)
        while top > 0, e.layerBitrates[top] == 0 { top -= 1 }
        return max(0, top)
    }

    /// The lowest layer being sent (the top one when none is).
    package static func lowestSending(_ e: AllocationEntry) -> Int {
        var low = 0
        while low < e.layerCount - 1, e.layerBitrates[low] == 0 { low += 1 }
        return low
    }

    /// The next active layer above the entry's and what it costs beyond
    /// the current one; nil at the top (or the preferred layer).
    static func nextLayer(_ e: AllocationEntry) -> (Int, Int)? {
        let top = min(e.maxLayer, e.layerCount - 1, 3)
        var next = e.layer + 1
        while next <= top, e.layerBitrates[next] == 0 { next += 1 }
        guard next <= top else { return nil }
        let current = e.layer >= 0 ? e.layerBitrates[e.layer] : 0
        return (next, e.layerBitrates[next] - current)
    }
}
