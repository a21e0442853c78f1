/// `setMaxIncomingBitrate` towards an endpoint that gets no REMB estimate:
/// the cap goes out as a REMB without SSRCs (it applies to everything the
/// endpoint sends), driven by its incoming media, at most every 1.5 s; once
/// the cap is lifted, a few REMBs of 0 ("unlimited") follow so the endpoint
/// drops the old cap (mediasoup's figures). A pure value: time in, the
/// bitrate to announce out.
struct IncomingBitrateLimiter {
    static let intervalNs: Int64 = 1_500_000_000
    static let unlimitedCount: UInt8 = 4

    /// The cap (bits per second; 0: none).
    private(set) var cap: UInt32 = 0
    private var sentNs: Int64 = 0
    private var sentOnce = false
    private var unlimitedLeft: UInt8 = 0

    /// Whether incoming packets should consult `due` at all.
    var active: Bool { cap != 0 || unlimitedLeft != 0 }

    /// A new cap (0 lifts it). Returns true when an announcement is due
    /// at once (lifting a cap the endpoint may still apply).
    mutating func set(_ bitrate: UInt32) -> Bool {
        let previous = cap
        cap = bitrate
        // A change goes out with the next packet (or now, when lifted).
        sentOnce = false
        if bitrate != 0 {
            unlimitedLeft = 0
            return false
        }
        guard previous != 0 else { return false }
        unlimitedLeft = Self.unlimitedCount
        return true
    }

    /// The bitrate to announce now, if one is due.
    mutating func due(nowNs: Int64) -> UInt32? {
        guard active, !sentOnce || nowNs - sentNs > Self.intervalNs else { return nil }
        sentOnce = true
        sentNs = nowNs
        if unlimitedLeft > 0 { unlimitedLeft -= 1 }
        return cap
    }
}
