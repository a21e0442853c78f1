import Testing
@testable import RingSFUForwarder

/// When a receive stream counts as stopped: simulcast consumers leave a layer
/// the publisher paused once it has been silent for four of its usual frame
/// intervals, and never sooner than 400 ms. Simulated time throughout.
@Suite("Receive stream silence")
struct ReceiveStreamTests {
    static let ms: Int64 = 1_000_000

    /// Feeds `frames` frames of `packetsPerFrame` packets, `intervalMs` apart,
    /// starting at `startNs`; returns the time of the last packet.
    @discardableResult
    static func feed(_ s: inout ReceiveStreamState, frames: Int, packetsPerFrame: Int = 3, intervalMs: Int64,
                     startNs: Int64 = 1_000_000_000, sequence: inout UInt16, timestamp: inout UInt32) -> Int64 {
        var now = startNs
        var gap = 0
        for f in 0..<frames {
            now = startNs + Int64(f) * intervalMs * ms
            timestamp &+= UInt32(intervalMs * 90)
            for p in 0..<packetsPerFrame {
                _ = s.record(sequence: sequence, timestamp: timestamp, arrivalNs: now + Int64(p) * 100_000, repair: false, gap: &gap)
                sequence &+= 1
            }
        }
        return now + Int64(packetsPerFrame - 1) * 100_000
    }

    @Test func neverReceivedIsSilent() {
        let s = ReceiveStreamState()
        #expect(s.silent(nowNs: 5 * Self.ms))
    }

    @Test func thirtyFramesASecondStopsAfter400Ms() {
        var s = ReceiveStreamState()
        var seq: UInt16 = 65_000, ts: UInt32 = 0
        let last = Self.feed(&s, frames: 60, intervalMs: 33, sequence: &seq, timestamp: &ts)
        // About 33 ms between frames: four intervals are less than the floor.
        #expect(abs(s.frameIntervalNs - 33 * Self.ms) < 3 * Self.ms)
        #expect(!s.silent(nowNs: last + 100 * Self.ms))
        #expect(!s.silent(nowNs: last + 399 * Self.ms))
        #expect(s.silent(nowNs: last + 401 * Self.ms))
    }

    @Test func slowScreenShareGetsFourFrames() {
        var s = ReceiveStreamState()
        var seq: UInt16 = 1, ts: UInt32 = 0
        let last = Self.feed(&s, frames: 40, packetsPerFrame: 8, intervalMs: 1000, sequence: &seq, timestamp: &ts)
        // One frame a second: a two-second pause is not a stop.
        #expect(!s.silent(nowNs: last + 2000 * Self.ms))
        #expect(!s.silent(nowNs: last + 3500 * Self.ms))
        #expect(s.silent(nowNs: last + 4200 * Self.ms))
    }

    @Test func longPausesDoNotStretchTheLimitBeyondTenSeconds() {
        var s = ReceiveStreamState()
        var seq: UInt16 = 1, ts: UInt32 = 0
        // Frames a minute apart count as 2.5 s intervals at most.
        let last = Self.feed(&s, frames: 40, packetsPerFrame: 1, intervalMs: 60_000, sequence: &seq, timestamp: &ts)
        #expect(s.frameIntervalNs <= ReceiveStreamState.maxFrameIntervalNs)
        #expect(s.silent(nowNs: last + 10_001 * Self.ms))
    }

    @Test func packetsOfOneFrameDoNotShortenTheInterval() {
        var s = ReceiveStreamState()
        var seq: UInt16 = 1, ts: UInt32 = 0
        // Large key frames: 40 packets per frame, 100 ms apart.
        Self.feed(&s, frames: 30, packetsPerFrame: 40, intervalMs: 100, sequence: &seq, timestamp: &ts)
        #expect(abs(s.frameIntervalNs - 100 * Self.ms) < 10 * Self.ms)
    }
}
