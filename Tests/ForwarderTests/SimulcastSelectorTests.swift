import Testing
@testable import RingSFUForwarder

/// A simulcast consumer's layer choice on simulated time: switches happen
/// only on the target's key frames; the target follows paused and resumed
/// encodings; a target that never sent gets its time to start.
@Suite("Simulcast selector")
struct SimulcastSelectorTests {
    static let ms: Int64 = 1_000_000

    /// A packet: (layer, key frame) -> what the selector says.
    static func feed(_ s: inout SimulcastSelector, _ packets: [(Int, Bool)], syncRequired: Bool = false) -> [SimulcastSelector.Decision] {
        packets.map { layer, key in s.decide(layer: layer, syncRequired: syncRequired) { key } }
    }

    @Test func startsOnTheTargetsKeyFrameOnly() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        let d = Self.feed(&s, [(0, true), (1, true), (2, false), (2, true), (2, false), (1, true)])
        #expect(d == [.skip, .skip, .skip, .switchTo(changed: true), .forward, .skip])
        #expect(s.current == 2)
    }

    @Test func aLowerPreferenceSwitchesOnItsKeyFrame() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        _ = Self.feed(&s, [(2, true)])
        s.preferred = 0
        let ask = s.retarget(nowNs: 10 * Self.ms, syncRequired: false) { _ in false }
        #expect(ask == 0, "the new target is asked for a key frame")
        // Until layer 0's key frame, layer 2 still flows: no freeze.
        let d = Self.feed(&s, [(2, false), (0, false), (2, false), (0, true), (2, true), (0, false)])
        #expect(d == [.forward, .skip, .forward, .switchTo(changed: true), .skip, .forward])
    }

    @Test func theBitrateLimitCapsThePreferredLayerUntilLifted() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        _ = Self.feed(&s, [(2, true)])
        // The allocation allows layer 0 only: down on layer 0's key frame.
        s.limit = 0
        #expect(s.retarget(nowNs: 10 * Self.ms, syncRequired: false) { _ in false } == 0)
        #expect(Self.feed(&s, [(2, false), (0, true), (2, true)]) == [.forward, .switchTo(changed: true), .skip])
        // A layer above the limit coming back is not a reason to move.
        #expect(!s.shouldRetarget(layer: 1, nowNs: 20 * Self.ms, layerStartNs: 0) { false })
        // Lifted: the preferred layer again, on its key frame.
        s.limit = 3
        #expect(s.retarget(nowNs: 30 * Self.ms, syncRequired: false) { _ in false } == 2)
        #expect(Self.feed(&s, [(1, true), (2, true)]) == [.skip, .switchTo(changed: true)])
    }

    @Test func holdingStopsTheCurrentLayerUntilTheLowerTargetsKeyFrame() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        _ = Self.feed(&s, [(2, true)])
        s.limit = 0
        s.holding = true
        _ = s.retarget(nowNs: 10 * Self.ms, syncRequired: false) { _ in false }
        #expect(Self.feed(&s, [(2, false), (2, true), (0, false), (0, true), (0, false)]) == [.skip, .skip, .skip, .switchTo(changed: true), .forward])
        #expect(!s.holding)
        // Holding only ever stops a layer above the target.
        s.holding = true
        #expect(Self.feed(&s, [(0, false)]) == [.forward])
    }

    @Test func retargetPicksTheHighestLiveLayerUpToThePreferred() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        // Layer 2 silent, 1 live.
        #expect(s.retarget(nowNs: 1, syncRequired: false) { $0 == 2 } == 1)
        #expect(s.target == 1)
        // Until the switch, asking again re-asks (the requester coalesces);
        // once layer 1 is current, nothing changed means no request.
        #expect(s.retarget(nowNs: 2, syncRequired: false) { $0 == 2 } == 1)
        _ = Self.feed(&s, [(1, true)])
        #expect(s.retarget(nowNs: 2, syncRequired: false) { $0 == 2 } == nil)
        // Everything silent: back to the preferred layer.
        #expect(s.retarget(nowNs: 3, syncRequired: false) { _ in true } == 2)
        // Retargeting to the current layer asks for nothing, unless a
        // re-sync (resume) is due.
        _ = Self.feed(&s, [(2, true)])
        #expect(s.retarget(nowNs: 4, syncRequired: false) { _ in false } == nil)
        s.preferred = 1
        #expect(s.retarget(nowNs: 5, syncRequired: false) { _ in false } == 1)
        s.preferred = 2
        #expect(s.retarget(nowNs: 6, syncRequired: true) { _ in false } == 2)
    }

    /// (layer of the packet, now, when that layer began, target silent?) -> retarget?
    static let retargetCases: [(Int, Int64, Int64, Bool, Bool)] = [
        (2, 1000, 0, false, false),  // the target itself
        (1, 1000, 0, false, false),  // a lower layer while the target flows
        (1, 1000, 0, true, true),    // a lower layer while the target is silent
        (1, 300, 0, true, false),    // ... but the target became the target 300 ms ago
        (1, 1000, 800, true, false), // ... or this layer only began 200 ms ago
        (1, 1000, 500, true, true),  // ... 500 ms ago
    ]

    @Test(arguments: retargetCases)
    func lowerLayersMoveASilentTarget(layer: Int, nowMs: Int64, layerStartMs: Int64, silent: Bool, expected: Bool) {
        let s = SimulcastSelector(preferred: 2, nowNs: 0)
        #expect(s.shouldRetarget(layer: layer, nowNs: nowMs * Self.ms, layerStartNs: layerStartMs * Self.ms) { silent } == expected)
    }

    @Test func aLayerThatComesBackMovesTheTargetUp() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        _ = s.retarget(nowNs: 1, syncRequired: false) { $0 > 0 } // only layer 0 live
        #expect(s.target == 0)
        #expect(s.shouldRetarget(layer: 1, nowNs: 2, layerStartNs: 0) { false })
        #expect(s.shouldRetarget(layer: 2, nowNs: 2, layerStartNs: 0) { false })
        s.preferred = 1
        #expect(!s.shouldRetarget(layer: 2, nowNs: 2, layerStartNs: 0) { false }, "above the preferred layer")
        #expect(s.retarget(nowNs: 3, syncRequired: false) { _ in false } == 1)
    }

    /// The publisher pauses layer 2 mid-stream (as Chromium does when its
    /// estimate drops): the consumer keeps layer 2 until layer 1's key
    /// frame, then moves, with one key frame request.
    @Test func pausedLayerScenario() {
        var s = SimulcastSelector(preferred: 2, nowNs: 0)
        var now: Int64 = 0
        var lastArrival = [Int64](repeating: 0, count: 3)
        var requests: [Int] = []
        var forwarded: [Int] = []
        func silent(_ l: Int) -> Bool { now - lastArrival[l] > 400 * Self.ms }
        for frame in 0..<60 {
            now = Int64(frame) * 33 * Self.ms + 1
            let layers = frame < 20 ? [0, 1, 2] : [0, 1] // layer 2 paused from frame 20
            for layer in layers {
                lastArrival[layer] = now
                let key = frame == 0 || (layer == 1 && frame == 40)
                if s.shouldRetarget(layer: layer, nowNs: now, layerStartNs: 1, targetSilent: { silent(s.target) }),
                   let ask = s.retarget(nowNs: now, syncRequired: false, silent: silent) {
                    requests.append(ask)
                }
                switch s.decide(layer: layer, syncRequired: false, isKeyFrame: { key }) {
                case .forward, .switchTo: forwarded.append(layer)
                case .skip: break
                }
            }
        }
        #expect(requests == [1], "one request, for layer 1, once layer 2 is silent")
        #expect(Array(forwarded.prefix(20)) == Array(repeating: 2, count: 20))
        #expect(forwarded.dropFirst(20).allSatisfy { $0 == 1 } && forwarded.count == 20 + 20)
        #expect(s.current == 1)
    }
}
