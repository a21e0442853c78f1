import Testing
@testable import RingSFUForwarder

/// An SVC consumer's layer choice on hand-made VP9 descriptors: three
/// spatial layers per picture (one packet each), temporal pattern 0 2 1 2.
@Suite("SVC selector")
struct SvcSelectorTests {
    /// A VP9 descriptor: picture id, layer indices (non-flexible: TL0PICIDX).
    static func descriptor(sid: UInt8, tid: UInt8, inter: Bool, begin: Bool = true, end: Bool = true, switchingUp: Bool = false) -> [UInt8] {
        [0x80 | (inter ? 0x40 : 0) | 0x20 | (begin ? 0x08 : 0) | (end ? 0x04 : 0), 0x81, 0x23,
         tid << 5 | (switchingUp ? 0x10 : 0) | sid << 1, 0x07]
    }

    /// Feeds pictures (three spatial layer frames each, the marker on the
    /// last); returns (sid, tid, marker) of what is forwarded.
    static func feed(_ s: inout SvcSelector, pictures tids: [UInt8], key: Bool = false, requests: inout Int) -> [(UInt8, UInt8, Bool)] {
        var out: [(UInt8, UInt8, Bool)] = []
        for (k, tid) in tids.enumerated() {
            for sid: UInt8 in 0..<3 {
                let d = descriptor(sid: sid, tid: tid, inter: !(key && k == 0))
                let l = SvcLayers.vp9(d, count: d.count)!
                let decision = s.decide(l, keyFrame: l.pictureStart && !l.interPicture, marker: sid == 2)
                if decision.requestKeyFrame { requests += 1 }
                if decision.forward { out.append((sid, tid, decision.marker)) }
            }
        }
        return out
    }

    @Test func startsOnAKeyFrameWithTheTargetLayers() {
        var s = SvcSelector(spatial: 1, temporal: SvcSelector.none)
        var requests = 0
        #expect(Self.feed(&s, pictures: [0, 2], requests: &requests).isEmpty, "nothing before a key frame")
        let got = Self.feed(&s, pictures: [0, 2], key: true, requests: &requests)
        // Spatial layers 0 and 1; the marker moves to layer 1's last packet.
        #expect(got.map { [$0.0, $0.1] } == [[0, 0], [1, 0], [0, 2], [1, 2]])
        #expect(got.map(\.2) == [false, true, false, true])
        #expect(requests == 0)
    }

    @Test func temporalDownAtThePictureUpAtABaseOne() {
        var s = SvcSelector(spatial: 2, temporal: SvcSelector.none)
        var requests = 0
        _ = Self.feed(&s, pictures: [0], key: true, requests: &requests)
        s.setTarget(spatial: 2, temporal: 0)
        #expect(Self.feed(&s, pictures: [2, 1, 2, 0], requests: &requests).map(\.1) == [0, 0, 0])
        s.setTarget(spatial: 2, temporal: 2)
        // The TL2 and TL1 pictures wait for the base picture (or a switching-up point).
        #expect(Self.feed(&s, pictures: [2, 1, 0, 2], requests: &requests).map(\.1) == [0, 0, 0, 2, 2, 2])
        #expect(s.currentTemporal == 2)
    }

    @Test func spatialUpNeedsAKeyFrameDownIsImmediate() {
        var s = SvcSelector(spatial: 0, temporal: SvcSelector.none)
        var requests = 0
        _ = Self.feed(&s, pictures: [0], key: true, requests: &requests)
        s.setTarget(spatial: 2, temporal: SvcSelector.none)
        let before = Self.feed(&s, pictures: [2, 1], requests: &requests)
        #expect(before.allSatisfy { $0.0 == 0 } && before.allSatisfy(\.2), "layer 0 only, each its picture's end")
        #expect(requests == 1, "one key frame request for the up-switch")
        let after = Self.feed(&s, pictures: [0, 2], key: true, requests: &requests)
        #expect(after.map(\.0) == [0, 1, 2, 0, 1, 2] && requests == 1)
        s.setTarget(spatial: 1, temporal: SvcSelector.none)
        #expect(Self.feed(&s, pictures: [1], requests: &requests).map(\.0) == [0, 1])
    }

    @Test func descriptorsWithoutLayerIndicesOrTooShort() {
        let noLayers: [UInt8] = [0x88, 0x01]
        #expect(SvcLayers.vp9(noLayers, count: noLayers.count) == nil)
        let cut: [UInt8] = [0xA8, 0x81]
        #expect(SvcLayers.vp9(cut, count: cut.count) == nil)
    }
}

extension SvcSelectorTests {
    @Test func holdingSendsNothingUntilTheKeyFrame() {
        var s = SvcSelector(spatial: 2, temporal: SvcSelector.none)
        var requests = 0
        _ = Self.feed(&s, pictures: [0], key: true, requests: &requests)
        s.setTarget(spatial: 0, temporal: SvcSelector.none)
        s.holdUntilKeyFrame()
        #expect(Self.feed(&s, pictures: [2, 1, 2], requests: &requests).isEmpty)
        #expect(s.holding)
        // The key frame's first packet ends the hold and restarts the numbering.
        let d = Self.descriptor(sid: 0, tid: 0, inter: false)
        let first = s.decide(SvcLayers.vp9(d, count: d.count)!, keyFrame: true, marker: false)
        #expect(first.forward && first.restart)
        #expect(Self.feed(&s, pictures: [2, 0], requests: &requests).map(\.0) == [0, 0])
        #expect(!s.holding && s.currentSpatial == 0)
    }
}
