/// Freezes as a subscriber's decoder would see them, from packets alone.
/// Packets are put in sequence order as a jitter buffer does, so a repair
/// (a retransmission arriving late and out of order) completes its frame
/// when it arrives. A frame is decodable once all its packets are in and
/// every frame since the last key frame was decodable (VP8 inter frames
/// need their predecessor); a packet still missing `giveUpNs` after later
/// ones arrived is given up on, which breaks the chain until the next key
/// frame (a later key frame that is already in ends the wait at once). A
/// freeze is more than 200 ms between two decodable frames of a track, or
/// since the last one at the end. Pure state; the sink feeds it from its
/// receive loop.
package struct FreezeTracker {
    package static let thresholdNs: Int64 = 200_000_000
    /// How long a missing packet is waited for once later ones arrived
    /// (about what a browser's NACK and jitter buffer give a repair).
    package static let giveUpNs: Int64 = 1_000_000_000
    /// Packets a track's buffer spans.
    static let window: Int64 = 1024

    package struct Stream {
        static let present: UInt8 = 1, marker: UInt8 = 2, keyStart: UInt8 = 4
        var flags = [UInt8](repeating: 0, count: Int(FreezeTracker.window))
        /// Unwrapped sequence numbers: the highest received, the first
        /// packet of the next frame to decode, the newest key frame start.
        var highest: Int64 = 0
        var next: Int64 = 0
        var lastKeyStart: Int64 = -1
        /// The chain since the last key frame is intact.
        var chainIntact = false
        /// Since when the next frame waits for a missing packet (0: it does not).
        var waitingSinceNs: Int64 = 0
        var lastDecodableNs: Int64 = 0
        var decoded = 0
        var freezes = 0
        var frozenNs: Int64 = 0

        init(first: Int64) {
            highest = first - 1
            next = first
        }

        func flag(_ s: Int64) -> UInt8 { flags[Int(s & (FreezeTracker.window - 1))] }

        mutating func receive(_ seq: UInt16, marker: Bool, keyStart: Bool, nowNs: Int64) {
            let ext = highest + Int64(Int16(bitPattern: seq &- UInt16(truncatingIfNeeded: highest)))
            // A duplicate, or older than what was decoded or given up.
            guard ext >= next, ext > highest || flag(ext) & Self.present == 0 else { return }
            if ext > highest {
                // Slots the window moves past are a lap old.
                var s = highest + 1
                while s < ext && s <= highest + FreezeTracker.window {
                    flags[Int(s & (FreezeTracker.window - 1))] = 0
                    s += 1
                }
                highest = ext
            }
            flags[Int(ext & (FreezeTracker.window - 1))] = Self.present | (marker ? Self.marker : 0) | (keyStart ? Self.keyStart : 0)
            if keyStart { lastKeyStart = max(lastKeyStart, ext) }
            if highest - next >= FreezeTracker.window {
                // Too far behind to wait any longer.
                chainIntact = false
                next = highest
            }
            advance(nowNs: nowNs)
        }

        /// Decodes what is complete, in order.
        mutating func advance(nowNs: Int64) {
            while next <= highest {
                var s = next
                while s <= highest && flag(s) & Self.present != 0 && flag(s) & Self.marker == 0 { s += 1 }
                if s <= highest, flag(s) & Self.present != 0 {
                    // next...s is a whole frame.
                    if flag(next) & Self.keyStart != 0 || chainIntact {
                        decodable(nowNs)
                        chainIntact = true
                    } else {
                        chainIntact = false
                    }
                    next = s + 1
                    waitingSinceNs = 0
                    continue
                }
                guard s <= highest else { break } // the frame is still arriving
                // A packet is missing with later ones in.
                if lastKeyStart > s {
                    // A newer key frame is in: the decoder starts over there.
                    next = lastKeyStart
                    waitingSinceNs = 0
                    continue
                }
                if waitingSinceNs == 0 { waitingSinceNs = nowNs }
                guard nowNs - waitingSinceNs >= FreezeTracker.giveUpNs else { break }
                // Given up: the frames after it are undecodable until a key frame.
                chainIntact = false
                next = s + 1
                waitingSinceNs = 0
            }
        }

        mutating func decodable(_ nowNs: Int64) {
            if lastDecodableNs > 0 && nowNs - lastDecodableNs > FreezeTracker.thresholdNs {
                freezes += 1
                frozenNs += nowNs - lastDecodableNs
            }
            lastDecodableNs = nowNs
            decoded += 1
        }
    }

    package private(set) var streams: [UInt64: Stream] = [:]

    package init() {}

    /// A video packet of the stream `key` (a subscriber's track).
    /// `keyStart`: the first packet of a key frame; `marker`: a frame's last.
    package mutating func packet(_ key: UInt64, seq: UInt16, marker: Bool, keyStart: Bool, nowNs: Int64) {
        streams[key, default: Stream(first: Int64(seq))].receive(seq, marker: marker, keyStart: keyStart, nowNs: nowNs)
    }

    /// Freezes so far, counting streams frozen at `nowNs` (without
    /// changing state), and the streams that decoded a frame.
    package func figures(nowNs: Int64) -> (count: Int, frozenMs: Double, decoding: Int) {
        var count = 0, ns: Int64 = 0, decoding = 0
        for s in streams.values {
            count += s.freezes
            ns += s.frozenNs
            guard s.lastDecodableNs > 0 else { continue }
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
        for key in Array(streams.keys) {
            streams[key]!.freezes = 0
            streams[key]!.frozenNs = 0
        }
    }
}
