import RingSFUForwarder

/// A trace event of a producer or consumer (`enableTraceEvent(types:)`),
/// with mediasoup's field names.
public struct TraceEventData: Codable, Sendable, Hashable {
    /// "rtp", "keyframe", "nack", "pli", "fir" or "sr".
    public var type: String
    /// Milliseconds since the Unix epoch.
    public var timestamp: Double
    /// "in": received by the SFU; "out": sent by it.
    public var direction: String
    public var info: TraceInfo
}

/// What a trace event is about: RTP header fields (rtp, keyframe), the
/// first sequence number and count of a NACK, a FIR's request number, an
/// SR's RTP time and packet count.
public struct TraceInfo: Codable, Sendable, Hashable {
    public var ssrc: UInt32
    public var sequenceNumber: Int?
    public var timestamp: UInt32?
    public var payloadType: Int?
    public var marker: Bool?
    public var size: Int?
    public var count: Int?
}

enum Trace {
    static let types = TraceType.allCases.map(\.name)

    /// The forwarder's mask for a list of type names (the field is named in errors).
    static func mask(_ names: [String]) throws(SFUError) -> UInt8 {
        var mask: UInt8 = 0
        for name in names {
            guard let t = TraceType.allCases.first(where: { $0.name == name }) else {
                throw .invalidArgument("invalid trace event type \"\(name)\" in types (one of \(types.joined(separator: ", ")))")
            }
            mask |= t.rawValue
        }
        return mask
    }

    static func data(_ r: TraceRecord) -> TraceEventData {
        var info = TraceInfo(ssrc: r.ssrc)
        switch r.type {
        case .rtp, .keyframe:
            info.sequenceNumber = Int(r.sequenceNumber)
            info.timestamp = r.timestamp
            info.payloadType = Int(r.payloadType)
            info.marker = r.marker
            info.size = r.size
        case .nack:
            info.sequenceNumber = Int(r.sequenceNumber)
            info.count = r.count
        case .fir:
            info.sequenceNumber = Int(r.sequenceNumber)
        case .sr:
            info.timestamp = r.timestamp
            info.count = r.count
        case .pli:
            break
        }
        return TraceEventData(type: r.type.name, timestamp: nowMillis(), direction: r.incoming ? "in" : "out", info: info)
    }
}
