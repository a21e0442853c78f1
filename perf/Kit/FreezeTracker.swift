/// Freezes as a subscriber's decoder would see them, from packets alone:
/// a frame is decodable when its packets arrived without a sequence gap
/// and every frame since the last key frame was decodable (VP8 inter
/// frames need their predecessor). A freeze is more than 200 ms between
/// two decodable frames of a track, or since the last one at the end.
/// Pure state; the sink feeds it from its receive loop.
package struct FreezeTracker {
    package static let thresholdNs: Int64 = 200_000_000

    package struct Stream {
        var lastSeq: UInt16 = 0
        var frameIntact = true
        /// The chain since the last key frame is intact.
        var chainIntact = false
        var lastDecodableNs: Int64 = 0
    }

    package private(set) var streams: [UInt64: Stream] = [:]
    package private(set) var freezes = 0
    package private(set) var frozenNs: Int64 = 0

    /// A video packet of the stream `key` (a subscriber's track).
    /// `keyStart`: the first packet of a key frame; `marker`: a frame's last.
    package init() {}

    package mutating func packet(_ key: UInt64, seq: UInt16, marker: Bool, keyStart: Bool, nowNs: Int64) {
        var s = streams[key] ?? Stream(lastSeq: seq &- 1, frameIntact: true, chainIntact: false, lastDecodableNs: 0)
        if seq != s.lastSeq &+ 1 { s.frameIntact = false }
        s.lastSeq = seq
        if keyStart {
            // A key frame restarts the chain; what came before it no longer matters.
            s.chainIntact = true
            s.frameIntact = true
        }
        if marker {
            if s.frameIntact && s.chainIntact {
                if s.lastDecodableNs > 0 && nowNs - s.lastDecodableNs > Self.thresholdNs {
                    freezes += 1
                    frozenNs += nowNs - s.lastDecodableNs
                }
                s.lastDecodableNs = nowNs
            } else {
                s.chainIntact = false
            }
            s.frameIntact = true
        }
        streams[key] = s
    }

    /// Freezes so far, counting streams frozen at `nowNs` (without
    /// changing state), and the streams that decoded a frame.
    package func figures(nowNs: Int64) -> (count: Int, frozenMs: Double, decoding: Int) {
        var count = freezes, ns = frozenNs, decoding = 0
        for s in streams.values where s.lastDecodableNs > 0 {
            decoding += 1
            if nowNs - s.lastDecodableNs > Self.thresholdNs {
                count += 1
                ns += nowNs - s.lastDecodableNs
            }
        }
        return (count, Double(ns) / 1e6, decoding)
    }

    /// Forgets the counts (not the streams): a measurement window starts.
    package mutating func resetCounts() {
        freezes = 0
        frozenNs = 0
    }
}
