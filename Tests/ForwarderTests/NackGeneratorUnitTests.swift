import Testing
@testable import RingSFUForwarder

/// The receive side's NACK list on simulated time: reorder tolerance,
/// retries, give-up, overflow, wrap-around.
@Suite("NACK generator unit")
struct NackGeneratorUnitTests {
    static let ms: Int64 = 1_000_000

    static func due(_ g: inout NackGenerator, at t: Int64) -> [UInt16] {
        var list = InlineArray<64, UInt16>(repeating: 0)
        let n = g.due(nowNs: t * ms, into: &list)
        return (0..<n).map { list[$0] }
    }

    @Test func waitsForReorderThenAsksEvery100Ms() {
        var g = NackGenerator()
        let fits = g.lost(from: 10, count: 2, nowNs: 0)
        #expect(fits)
        #expect(Self.due(&g, at: 5) == [], "inside the reorder tolerance")
        #expect(Self.due(&g, at: 10) == [10, 11])
        #expect(Self.due(&g, at: 50) == [])
        #expect(Self.due(&g, at: 110) == [10, 11])
        // One of them arrives (reordered or repaired): no longer asked for.
        let first = g.arrived(11), second = g.arrived(11)
        #expect(first && !second)
        #expect(Self.due(&g, at: 210) == [10])
    }

    @Test func arrivingInsideTheToleranceIsNeverAsked() {
        var g = NackGenerator()
        g.lost(from: 500, count: 1, nowNs: 0)
        let arrived = g.arrived(500)
        #expect(arrived)
        #expect(Self.due(&g, at: 100) == [])
        #expect(g.count == 0)
    }

    @Test func givesUpAfterTenRequests() {
        var g = NackGenerator()
        g.lost(from: 7, count: 1, nowNs: 0)
        var asked = 0
        for t in stride(from: Int64(10), through: 2000, by: 40) { asked += Self.due(&g, at: t).count }
        #expect(asked == Int(NackGenerator.maxRetries))
        #expect(g.count == 0)
    }

    @Test func aBurstLargerThanTheListIsGivenUp() {
        var g = NackGenerator()
        let fits = g.lost(from: 0, count: 60, nowNs: 0)
        let overflows = !g.lost(from: 100, count: 5, nowNs: 0)
        #expect(fits)
        #expect(overflows, "does not fit: the caller asks for a key frame")
        #expect(g.count == 0, "and the list starts over")
    }

    @Test func wrapsAround() {
        var g = NackGenerator()
        g.lost(from: 65_534, count: 4, nowNs: 0)
        #expect(Self.due(&g, at: 10) == [65_534, 65_535, 0, 1])
    }

    /// Random losses and arrivals: nothing is asked for before the
    /// tolerance, or more than ten times, and the list never overflows.
    @Test func randomOperationsKeepTheInvariants() {
        var rng = SplitMix64(seed: 3)
        var g = NackGenerator()
        var askedCount: [UInt16: Int] = [:]
        var lostAt: [UInt16: Int64] = [:]
        var seq: UInt16 = 0
        for step in 0..<5000 {
            let now = Int64(step) * 5
            switch rng.next() % 4 {
            case 0:
                let n = Int(rng.next() % 5) + 1
                if g.lost(from: seq, count: n, nowNs: now * Self.ms) {
                    for i in 0..<n { lostAt[seq &+ UInt16(i)] = now; askedCount[seq &+ UInt16(i)] = 0 }
                } else {
                    lostAt.removeAll()
                }
                seq &+= UInt16(n)
            case 1:
                if let k = lostAt.keys.sorted().randomElement(using: &rng) {
                    let wasMissing = g.arrived(k)
                    // Given up on (asked ten times) is forgotten.
                    if askedCount[k, default: 0] < Int(NackGenerator.maxRetries) { #expect(wasMissing) }
                    lostAt[k] = nil
                }
            default:
                for s in Self.due(&g, at: now) {
                    #expect(lostAt[s] != nil, "asked for \(s), which is not missing")
                    #expect(now - (lostAt[s] ?? now) >= 10)
                    askedCount[s, default: 0] += 1
                    #expect(askedCount[s]! <= Int(NackGenerator.maxRetries))
                }
            }
            #expect(g.count <= NackGenerator.capacity)
            seq &+= 1
        }
    }
}

