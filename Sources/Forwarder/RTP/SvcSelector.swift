/// What an SVC consumer decides on for one packet: one RTP stream carries
/// every spatial layer of a picture (each a "layer frame") and every
/// temporal layer. From VP9's payload descriptor (`vp9`) or AV1's
/// dependency descriptor (`DependencyDescriptor.parse`).
package struct SvcLayers: Equatable, Sendable {
    package var spatial: UInt8
    package var temporal: UInt8
    /// B: first packet of a layer frame; E: its last packet.
    package var begin: Bool
    package var end: Bool
    /// P: predicted from an earlier picture (false on key frames).
    package var interPicture: Bool
    /// U: a switching-up point to a higher temporal layer.
    package var switchingUp: Bool

    /// The descriptor's layer fields; nil when it carries no layer indices
    /// (L=0) or is malformed.
    package static func vp9(_ p: UnsafeRawPointer, count: Int) -> SvcLayers? {
        guard count >= 1 else { return nil }
        let b0 = p.load(as: UInt8.self)
        guard b0 & 0x20 != 0 else { return nil } // L
        var i = 1
        if b0 & 0x80 != 0 { // I: picture id, 7 or 15 bits
            guard count > i else { return nil }
            i += p.load(fromByteOffset: i, as: UInt8.self) & 0x80 != 0 ? 2 : 1
        }
        guard count > i else { return nil }
        let l = p.load(fromByteOffset: i, as: UInt8.self)
        return SvcLayers(spatial: l >> 1 & 0x07, temporal: l >> 5, begin: b0 & 0x08 != 0, end: b0 & 0x04 != 0,
                         interPicture: b0 & 0x40 != 0, switchingUp: l & 0x10 != 0)
    }

    /// The first packet of a picture (its base spatial layer's first).
    package var pictureStart: Bool { begin && spatial == 0 }
}

/// Which layers of an SVC stream (VP9, AV1) a consumer forwards: the spatial
/// layers up to `targetSpatial` and temporal layers up to `targetTemporal`
/// (mediasoup's SVC consumer). Going down takes effect at the next
/// picture; a higher spatial layer starts at a key frame (its frames refer
/// to its own earlier ones, which the endpoint does not have; K-SVC modes
/// refer to lower layers only at key frames), a higher temporal layer at
/// a base-layer picture or a switching-up point. The marker bit moves to
/// the last packet of the highest spatial layer forwarded. A pure value.
package struct SvcSelector: Sendable {
    package static let none: UInt8 = 0xFF
    package var targetSpatial: UInt8
    package var targetTemporal: UInt8
    package private(set) var currentSpatial = SvcSelector.none
    package private(set) var currentTemporal = SvcSelector.none
    /// A key frame was asked for the pending spatial up-switch.
    private var keyFrameAsked = false
    /// Nothing goes out until the next key frame (the link was overrun:
    /// what it dropped leaves the endpoint's references broken anyway, and
    /// sending less lets the key frame through sooner).
    package private(set) var holding = false

    package mutating func holdUntilKeyFrame() { holding = true }

    package init(spatial: UInt8 = 3, temporal: UInt8 = 3) {
        targetSpatial = spatial
        targetTemporal = temporal
    }

    package struct Decision: Equatable {
        package var forward: Bool
        /// The forwarded packet ends what the endpoint gets of the picture.
        package var marker: Bool
        /// `currentSpatial`/`currentTemporal` changed.
        package var changed: Bool
        /// Ask the publisher for a key frame (once per up-switch).
        package var requestKeyFrame: Bool
        /// A hold ended at this key frame: what was sent before it is of
        /// no use to the endpoint any more (it starts over here), so its
        /// repairs are not worth the link that was just overrun.
        package var restart = false
    }

    @inline(__always)
    package mutating func decide(_ l: SvcLayers, keyFrame: Bool, marker: Bool) -> Decision {
        var changed = false
        var request = false
        var restart = false
        if holding {
            guard keyFrame && l.pictureStart else { return Decision(forward: false, marker: false, changed: false, requestKeyFrame: false) }
            holding = false
            restart = true
        }
        if keyFrame && l.pictureStart {
            changed = currentSpatial != targetSpatial || currentTemporal != targetTemporal
            currentSpatial = targetSpatial
            currentTemporal = targetTemporal
            keyFrameAsked = false
        } else if currentSpatial != Self.none && l.pictureStart {
            if targetSpatial < currentSpatial {
                currentSpatial = targetSpatial
                changed = true
            }
            if targetTemporal < currentTemporal || (targetTemporal > currentTemporal && (l.temporal == 0 || l.switchingUp && l.temporal <= targetTemporal)) {
                currentTemporal = targetTemporal
                changed = true
            }
        }
        if currentSpatial != Self.none, targetSpatial > currentSpatial, !keyFrameAsked {
            keyFrameAsked = true
            request = true
        }
        let forward = currentSpatial != Self.none && l.spatial <= currentSpatial && l.temporal <= currentTemporal
        return Decision(forward: forward, marker: forward && (marker || l.end && l.spatial == currentSpatial), changed: changed,
                        requestKeyFrame: request, restart: restart)
    }

    /// A new target: asks again for a key frame if it is a spatial up-switch.
    package mutating func setTarget(spatial: UInt8, temporal: UInt8) {
        if spatial != targetSpatial { keyFrameAsked = false }
        targetSpatial = spatial
        targetTemporal = temporal
    }
}
