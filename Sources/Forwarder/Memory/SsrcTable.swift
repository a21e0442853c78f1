/// Open-addressing hash table from (transport, SSRC) to a producer handle,
/// preallocated at worker start so that lookups and inserts never allocate.
/// Linear probing with tombstones; capacity is a power of two and kept at
/// most half full by the control plane's limits.
package struct SsrcTable: ~Copyable {
    private let keys: UnsafeMutablePointer<UInt64>
    private let values: UnsafeMutablePointer<UInt32>
    private let mask: Int
    package private(set) var count = 0

    private static let empty: UInt64 = .max
    private static let tombstone: UInt64 = .max - 1

    package init(capacityPowerOfTwo bits: Int) {
        let capacity = 1 << bits
        mask = capacity - 1
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: Self.empty, count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: 0, count: capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    private static func key(_ transport: UInt32, _ ssrc: UInt32) -> UInt64 {
        UInt64(transport) << 32 | UInt64(ssrc)
    }

    @inline(__always)
    private func hash(_ k: UInt64) -> Int {
        // Fibonacci hashing spreads sequential SSRCs and transports well.
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    @inline(__always)
    package func lookup(transport: UInt32, ssrc: UInt32) -> UInt32? {
        let k = Self.key(transport, ssrc)
        var i = hash(k)
        for _ in 0...mask {
            let existing = keys[i]
            if existing == k { return values[i] }
            if existing == Self.empty { return nil }
            i = (i &+ 1) & mask
        }
        return nil
    }

    /// Inserts or replaces. Returns false when the table is full.
    @discardableResult
    package mutating func insert(transport: UInt32, ssrc: UInt32, value: UInt32) -> Bool {
        guard count < mask else { return false }
        let k = Self.key(transport, ssrc)
        var i = hash(k)
        var firstFree = -1
        for _ in 0...mask {
            let existing = keys[i]
            if existing == k { values[i] = value; return true }
            if existing == Self.tombstone, firstFree < 0 { firstFree = i }
            if existing == Self.empty {
                let slot = firstFree >= 0 ? firstFree : i
                keys[slot] = k
                values[slot] = value
                count += 1
                return true
            }
            i = (i &+ 1) & mask
        }
        if firstFree >= 0 {
            keys[firstFree] = k
            values[firstFree] = value
            count += 1
            return true
        }
        return false
    }

    @discardableResult
    package mutating func remove(transport: UInt32, ssrc: UInt32) -> Bool {
        let k = Self.key(transport, ssrc)
        var i = hash(k)
        for _ in 0...mask {
            let existing = keys[i]
            if existing == k {
                keys[i] = Self.tombstone
                count -= 1
                return true
            }
            if existing == Self.empty { return false }
            i = (i &+ 1) & mask
        }
        return false
    }
}
