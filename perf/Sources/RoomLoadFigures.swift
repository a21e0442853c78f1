import Foundation

/// What a room run reports: a line a second, per-track figures from the
/// server, and the run's summary.
extension RoomLoad {
    struct Second: Codable {
        var t: Int
        var sentPps: UInt64
        var receivedPps: UInt64
        var serverOutPps: UInt64
        var serverOutMbps: Double
        var serverCpuPercent: Double
        var lossPercent: Double
        /// Latency of the packets received in this second.
        var p50Us: Double
        var p99Us: Double
        /// Freezes so far in the run (see `FreezeTracker`) and their time.
        var freezes: Int
        var frozenMs: Double
    }

    struct Track: Codable {
        var producerId: String
        var ssrc: UInt32
        var publisherSent: UInt64
        var serverReceived: Int
        var serverForwarded: Int
    }

    struct Summary: Codable {
        var subscribers: Int
        var participants: Int
        var joinMsMedian: Double
        var joinMsMax: Double
        var sent: UInt64
        var expected: UInt64
        var received: UInt64
        var lossPercent: Double
        var latencyUs: RunFigures.Latency
        /// Gaps over 200 ms between decodable frames of a subscriber's track.
        var freezes: Int
        var frozenMs: Double
        /// Subscriber tracks that decoded at least one frame (of publishers x subscribers).
        var decodingTracks: Int
        /// The room's workers: CPU seconds per million packets they sent, and their output bitrate.
        var serverCpuPerMillionPackets: Double
        var serverOutMbps: Double
        var tracks: [Track]
    }
}
