/// The receive side's NACK list for one stream (mediasoup's generator
/// timing): packets found missing are asked for after a short reorder
/// tolerance, then again every `retryNs`, up to `maxRetries` times; a burst
/// larger than the list is given up (the caller asks for a key frame
/// instead). A pure value: time comes in as a parameter.
package struct NackGenerator {
    package static let capacity = 64
    package static let reorderNs: Int64 = 10_000_000
    package static let retryNs: Int64 = 100_000_000
    package static let maxRetries: UInt8 = 10

    struct Missing {
        var sequence: UInt16 = 0
        var retries: UInt8 = 0
        /// When it was found missing, and when last asked for.
        var detectedNs: Int64 = 0
        var sentNs: Int64 = 0
    }

    private var missing = InlineArray<64, Missing>(repeating: Missing())
    package private(set) var count = 0

    package init() {}

    /// `count` packets from `first` on are missing. Returns false (and
    /// forgets the whole list) when they do not fit.
    @discardableResult
    package mutating func lost(from first: UInt16, count n: Int, nowNs: Int64) -> Bool {
        guard count + n <= Self.capacity else {
            count = 0
            return false
        }
        for i in 0..<n {
            missing[count] = Missing(sequence: first &+ UInt16(i), retries: 0, detectedNs: nowNs, sentNs: 0)
            count += 1
        }
        return true
    }

    /// A packet arrived; returns whether it was one being asked for.
    package mutating func arrived(_ sequence: UInt16) -> Bool {
        for i in 0..<count where missing[i].sequence == sequence {
            remove(at: i)
            return true
        }
        return false
    }

    private mutating func remove(at i: Int) {
        for j in i..<(count - 1) { missing[j] = missing[j + 1] }
        count -= 1
    }

    /// The sequence numbers to ask for now, in `list`; returns how many.
    /// Packets asked for `maxRetries` times are forgotten.
    package mutating func due(nowNs: Int64, into list: inout InlineArray<64, UInt16>) -> Int {
        var n = 0
        var i = 0
        while i < count {
            if missing[i].retries >= Self.maxRetries {
                remove(at: i)
                continue
            }
            let m = missing[i]
            let isDue = m.retries == 0 ? nowNs - m.detectedNs >= Self.reorderNs : nowNs - m.sentNs >= Self.retryNs
            if isDue {
                list[n] = m.sequence
                n += 1
                missing[i].retries += 1
                missing[i].sentNs = nowNs
            }
            i += 1
        }
        return n
    }
}
