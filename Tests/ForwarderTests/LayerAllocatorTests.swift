import Testing
@testable import RingSFUForwarder

@Suite("Layer allocation")
struct LayerAllocatorTests {
    static func simulcast(_ rates: [Int], priority: UInt8 = 1, applied: Int = -1, maxLayer: Int = 3) -> AllocationEntry {
        var e = AllocationEntry()
        for (i, r) in rates.enumerated() { e.layerBitrates[i] = r }
        e.layerCount = rates.count
        e.priority = priority
        e.applied = applied
        e.maxLayer = maxLayer
        return e
    }

    static func audio(_ bps: Int) -> AllocationEntry {
        var e = AllocationEntry()
        e.fixedBitrate = bps
        return e
    }

    /// Runs an allocation; returns the layers and the bitrate used.
    static func run(_ available: Int, _ entries: [AllocationEntry]) -> ([Int], Int) {
        var entries = entries
        var order = [Int32](repeating: 0, count: entries.count)
        let used = entries.withUnsafeMutableBufferPointer { e in
            order.withUnsafeMutableBufferPointer { o in LayerAllocator.allocate(available: available, e, order: o) }
        }
        return (entries.map(\.layer), used)
    }

    static let layers = [150_000, 500_000, 1_500_000]

    @Test func audioFirstThenTheLayersThatFit() {
        #expect(Self.run(3_000_000, [Self.audio(50_000), Self.simulcast(Self.layers)]).0 == [-1, 2])
        #expect(Self.run(1_000_000, [Self.audio(50_000), Self.simulcast(Self.layers)]).0 == [-1, 1])
        #expect(Self.run(300_000, [Self.audio(50_000), Self.audio(50_000), Self.simulcast(Self.layers)]).0 == [-1, -1, 0])
        // Not even the lowest layer fits: no video, the audio still goes out.
        let (layers, used) = Self.run(120_000, [Self.audio(50_000), Self.audio(50_000), Self.simulcast(Self.layers)])
        #expect(layers == [-1, -1, -1] && used == 100_000)
    }

    @Test func higherPriorityGetsMore() {
        // Room for one top layer and one bottom one.
        let (layers, _) = Self.run(1_900_000, [Self.simulcast(Self.layers, priority: 1), Self.simulcast(Self.layers, priority: 3)])
        #expect(layers == [0, 2])
        // Equal priorities share round by round.
        #expect(Self.run(1_100_000, [Self.simulcast(Self.layers), Self.simulcast(Self.layers)]).0 == [1, 1])
    }

    @Test func preferredLayerAndInactiveLayers() {
        #expect(Self.run(10_000_000, [Self.simulcast(Self.layers, maxLayer: 1)]).0 == [1])
        // The middle layer is not being sent: the next one up is taken.
        #expect(Self.run(10_000_000, [Self.simulcast([150_000, 0, 1_500_000])]).0 == [2])
        #expect(Self.run(1_000_000, [Self.simulcast([150_000, 0, 1_500_000])]).0 == [0])
    }

    @Test func upgradesNeedAMarginDowngradesDoNot() {
        // Exactly enough for layer 1 while on layer 0: stay.
        #expect(Self.run(500_000, [Self.simulcast(Self.layers, applied: 0)]).0 == [0])
        // 15 % more: up.
        #expect(Self.run(600_000, [Self.simulcast(Self.layers, applied: 0)]).0 == [1])
        // Already on layer 1 with exactly enough: keep it.
        #expect(Self.run(500_000, [Self.simulcast(Self.layers, applied: 1)]).0 == [1])
        // Below it: down at once.
        #expect(Self.run(450_000, [Self.simulcast(Self.layers, applied: 2)]).0 == [0])
    }
}
