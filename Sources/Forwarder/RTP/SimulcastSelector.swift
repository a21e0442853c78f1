/// Which layer a simulcast consumer forwards. Three layers matter: the
/// preferred one (the application's choice), the target (the highest layer
/// up to the preferred one that is sending) and the current one (what the
/// endpoint is decoding). The consumer moves to a new target only on that
/// layer's key frame, so the endpoint never gets a stream it cannot decode.
/// A pure value: time and the layers' liveness come in as parameters.
package struct SimulcastSelector {
    package var preferred = 0
    /// The highest layer the transport's available bitrate allows (the
    /// layer allocation's result; 3 while the transport does not estimate).
    package var limit = 3
    /// The highest layer wanted: the preferred one, within the limit.
    @inline(__always)
    package var wanted: Int { min(preferred, limit) }
    /// Set when the link cannot carry the current layer at all (the
    /// allocation's verdict): its packets stop at once instead of queueing
    /// in the network until the lower target's key frame, which would then
    /// wait behind them. Cleared by the switch.
    package var holding = false
    package private(set) var target = 0
    /// -1 until the first key frame was forwarded.
    package private(set) var current = -1
    /// Since when the target is what it is: a target that never sent gets
    /// `ReceiveStreamState.minSilenceNs` to start before the consumer
    /// settles for a lower layer.
    package private(set) var targetSinceNs: Int64 = 0

    package init(preferred: Int = 0, nowNs: Int64 = 0) {
        self.preferred = preferred
        target = preferred
        targetSinceNs = nowNs
    }

    /// Recomputes the target from which layers are silent. Returns the
    /// layer to ask for a key frame (a new target other than the layer
    /// being forwarded, or any target while a re-sync is due), else nil.
    package mutating func retarget(nowNs: Int64, syncRequired: Bool, silent: (Int) -> Bool) -> Int? {
        var next = wanted
        var layer = next
        while layer >= 0 {
            if !silent(layer) {
                next = layer
                break
            }
            layer -= 1
        }
        if next == current { holding = false }
        guard next != target || current != next else { return nil }
        if next != target { targetSinceNs = nowNs }
        target = next
        return current != next || syncRequired ? next : nil
    }

    /// Whether a packet of `layer` calls for a new target: a layer up to
    /// the wanted one above the target came back, or the target has
    /// been silent long enough while this lower layer flows (browsers pause
    /// the encodings they cannot afford). `layerStartNs` is when this
    /// layer's first packet arrived.
    @inline(__always)
    package func shouldRetarget(layer: Int, nowNs: Int64, layerStartNs: Int64, targetSilent: () -> Bool) -> Bool {
        if layer > target { return layer <= wanted }
        return layer < target && nowNs - max(targetSinceNs, layerStartNs) > ReceiveStreamState.minSilenceNs && targetSilent()
    }

    package enum Decision: Equatable {
        /// Not for this consumer (another layer, or waiting for a key frame).
        case skip
        /// The current layer: forward.
        case forward
        /// The target's key frame: re-sync the numbering on it and forward;
        /// `changed` when the current layer is now a different one.
        case switchTo(changed: Bool)
    }

    /// What to do with a packet of `layer`; `isKeyFrame` is asked only for
    /// the target layer's packets while a switch is due.
    @inline(__always)
    package mutating func decide(layer: Int, syncRequired: Bool, isKeyFrame: () -> Bool) -> Decision {
        if layer == current && !syncRequired { return holding && target < current ? .skip : .forward }
        guard layer == target, isKeyFrame() else { return .skip }
        let changed = current != layer
        current = layer
        holding = false
        return .switchTo(changed: changed)
    }
}
