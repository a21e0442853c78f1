/// Durations in the clocks RTP and RTCP speak.
enum MediaTime {
    /// A duration in NTP units (2^-32 s), without overflow for any span.
    static func ntp(_ ns: Int64) -> UInt64 {
        let seconds = UInt64(ns / 1_000_000_000), rest = UInt64(ns % 1_000_000_000)
        return seconds &<< 32 &+ (rest << 32) / 1_000_000_000
    }

    /// A duration in RTP timestamp units (wrapping, as timestamps do).
    static func rtp(_ ns: Int64, clockRate: Int64) -> UInt32 {
        let seconds = ns / 1_000_000_000, rest = ns % 1_000_000_000
        return UInt32(truncatingIfNeeded: seconds &* clockRate &+ rest * clockRate / 1_000_000_000)
    }
}
