/// Which temporal layers of a VP8 stream a consumer forwards (RFC 7741:
/// each picture carries its temporal layer id, TID). Pictures above the
/// target are dropped; going down takes effect at the next picture,
/// going up at the next base-layer (TID 0) picture: in the usual
/// temporal patterns every later picture refers back no further than
/// that one, so nothing the endpoint gets refers to a dropped picture.
/// A pure value.
package struct TemporalLayerFilter: Sendable {
    /// Every layer (no filtering asked for).
    package static let all: UInt8 = 0xFF

    /// The application's choice, and what is in effect.
    package var target = TemporalLayerFilter.all
    package private(set) var current = TemporalLayerFilter.all
    /// Set once a picture was dropped: from then on picture ids are
    /// renumbered to stay continuous (see `Vp8EncodingContext`).
    package private(set) var rewriting = false

    /// Starts with every layer: a lower target applies at the first picture.
    package init(target: UInt8 = TemporalLayerFilter.all) {
        self.target = target
    }

    /// Whether a packet of temporal layer `tid` goes out; `pictureStart`:
    /// it is the first packet of its picture. Returns whether `current`
    /// changed too (for a `layerschange`).
    @inline(__always)
    package mutating func forward(tid: UInt8, pictureStart: Bool) -> (forward: Bool, changed: Bool) {
        var changed = false
        if target != current && pictureStart && (target < current || tid == 0) {
            current = target
            changed = true
        }
        let forward = tid <= current
        if !forward { rewriting = true }
        return (forward, changed)
    }
}
