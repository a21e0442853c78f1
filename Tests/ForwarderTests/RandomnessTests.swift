import Testing
@testable import RingSFUForwarder

/// The forwarder's random choices come from an injected generator: fixed
/// seeds replay them.
@Suite("Injected randomness")
struct RandomnessTests {
    @Test func sameSeedSameChoices() {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42), c = SplitMix64(seed: 43)
        let fromA = (0..<8).map { _ in a.next() }
        #expect(fromA == (0..<8).map { _ in b.next() })
        #expect(fromA != (0..<8).map { _ in c.next() })
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func portsAreTriedFromARandomPointOnceEach(seed: UInt64) {
        var rng = SplitMix64(seed: seed), again = SplitMix64(seed: seed)
        let order = UdpSocket.shuffled(40000...40009, using: &rng)
        #expect(order == UdpSocket.shuffled(40000...40009, using: &again))
        #expect(Set(order) == Set(40000...40009) && order.count == 10)
        // A rotation: consecutive after the starting point, wrapping once.
        let start = order[0]
        #expect(order == (0..<10).map { 40000 + (start - 40000 + UInt16($0)) % 10 })
        #expect(UdpSocket.shuffled(5...5, using: &rng) == [5])
    }
}
