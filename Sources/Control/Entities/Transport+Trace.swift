import RingSFUForwarder

/// A transport's trace event, as mediasoup's: type "bwe", the send-side
/// estimate and what it is made of, at most once a second while enabled.
public struct TransportTraceEventData: Codable, Sendable, Hashable {
    public var type: String
    /// Milliseconds since the Unix epoch.
    public var timestamp: Double
    /// "out": about what the SFU sends.
    public var direction: String
    public var info: BweTraceInfo
}

/// The send-side estimation of a transport (bits per second).
public struct BweTraceInfo: Codable, Sendable, Hashable {
    /// The estimate: what the transport's endpoint can receive.
    public var availableBitrate: Int
    /// What the endpoint acknowledged receiving over the last 500 ms.
    public var ackedBitrate: Int
    public var delayBasedBitrate: Int
    public var lossBasedBitrate: Int
    public var lossFraction: Double
    /// The bounds (`setMinOutgoingBitrate`, `setMaxOutgoingBitrate` or the defaults).
    public var minBitrate: Int
    public var maxBitrate: Int
    /// The rate the latest probe got through at (0: none yet). Not in
    /// mediasoup's trace: it shows why the estimate jumped or did not.
    public var probeBitrate: Int
}

extension Transport {
    /// Reports trace events of these types ("bwe"); an empty list turns
    /// them off. Only transports with send-side estimation (a consumer
    /// negotiated transport-wide CC and its endpoint sends the feedback)
    /// have "bwe" events.
    public func enableTraceEvent(types: [String]) throws(SFUError) {
        try checkOpen()
        for t in types where t != "bwe" { throw .invalidArgument("invalid trace event type \"\(t)\" for a transport (bwe)") }
        forwarder.send(.setTransportTrace(transport: handle, bwe: types.contains("bwe")))
    }

    func bweTraced(_ r: BweRecord) {
        guard !closed else { return }
        publish(.trace(TransportTraceEventData(type: "bwe", timestamp: nowMillis(), direction: "out", info: BweTraceInfo(
            availableBitrate: r.availableBitrate, ackedBitrate: r.ackedBitrate, delayBasedBitrate: r.delayBasedBitrate,
            lossBasedBitrate: r.lossBasedBitrate, lossFraction: r.lossFraction, minBitrate: r.minBitrate, maxBitrate: r.maxBitrate, probeBitrate: r.probeBitrate))))
    }
}
