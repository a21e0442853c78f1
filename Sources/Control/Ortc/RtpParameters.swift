/// RTP parameter and capability types with mediasoup's JSON field names, so
/// the JSON that mediasoup-client, libmediasoupclient and pymediasoup send
/// decodes unchanged.

public enum MediaKind: String, Codable, Sendable, Hashable {
    case audio, video
}

/// A codec parameter value: mediasoup allows strings and numbers.
public enum ParameterValue: Codable, Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case number(Double)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Double.self) { self = .number(n); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        throw DecodingError.typeMismatch(ParameterValue.self, .init(codingPath: decoder.codingPath, debugDescription: "a codec parameter must be a string or a number"))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let n):
            if n.rounded() == n, abs(n) < 1e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        }
    }

    public var intValue: Int? {
        switch self {
        case .number(let n): Int(exactly: n)
        case .string(let s): Int(s)
        }
    }
    public var stringValue: String {
        switch self {
        case .string(let s): s
        case .number(let n): n.rounded() == n ? String(Int64(n)) : String(n)
        }
    }
    public var description: String { stringValue }
}

extension ParameterValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
}

public struct RtcpFeedback: Codable, Sendable, Hashable {
    public var type: String
    public var parameter: String?
    public init(type: String, parameter: String? = nil) {
        self.type = type
        self.parameter = parameter
    }
}

/// A codec the router (or a remote endpoint) can handle.
public struct RtpCodecCapability: Codable, Sendable, Hashable {
    public var kind: MediaKind?
    public var mimeType: String
    public var preferredPayloadType: Int?
    public var clockRate: Int
    public var channels: Int?
    public var parameters: [String: ParameterValue]?
    public var rtcpFeedback: [RtcpFeedback]?

    public init(kind: MediaKind? = nil, mimeType: String, preferredPayloadType: Int? = nil, clockRate: Int, channels: Int? = nil, parameters: [String: ParameterValue]? = nil, rtcpFeedback: [RtcpFeedback]? = nil) {
        self.kind = kind
        self.mimeType = mimeType
        self.preferredPayloadType = preferredPayloadType
        self.clockRate = clockRate
        self.channels = channels
        self.parameters = parameters
        self.rtcpFeedback = rtcpFeedback
    }
}

public struct RtpHeaderExtension: Codable, Sendable, Hashable {
    public var kind: MediaKind
    public var uri: String
    public var preferredId: Int
    public var preferredEncrypt: Bool?
    public var direction: String?

    public init(kind: MediaKind, uri: String, preferredId: Int, preferredEncrypt: Bool? = false, direction: String? = "sendrecv") {
        self.kind = kind
        self.uri = uri
        self.preferredId = preferredId
        self.preferredEncrypt = preferredEncrypt
        self.direction = direction
    }
}

public struct RtpCapabilities: Codable, Sendable, Hashable {
    public var codecs: [RtpCodecCapability]?
    public var headerExtensions: [RtpHeaderExtension]?
    public init(codecs: [RtpCodecCapability]? = [], headerExtensions: [RtpHeaderExtension]? = []) {
        self.codecs = codecs
        self.headerExtensions = headerExtensions
    }
}

public struct RtpCodecParameters: Codable, Sendable, Hashable {
    public var mimeType: String
    public var payloadType: Int
    public var clockRate: Int
    public var channels: Int?
    public var parameters: [String: ParameterValue]?
    public var rtcpFeedback: [RtcpFeedback]?

    public init(mimeType: String, payloadType: Int, clockRate: Int, channels: Int? = nil, parameters: [String: ParameterValue]? = [:], rtcpFeedback: [RtcpFeedback]? = []) {
        self.mimeType = mimeType
        self.payloadType = payloadType
        self.clockRate = clockRate
        self.channels = channels
        self.parameters = parameters
        self.rtcpFeedback = rtcpFeedback
    }
}

public struct RtpHeaderExtensionParameters: Codable, Sendable, Hashable {
    public var uri: String
    public var id: Int
    public var encrypt: Bool?
    public var parameters: [String: ParameterValue]?
    public init(uri: String, id: Int, encrypt: Bool? = false, parameters: [String: ParameterValue]? = [:]) {
        self.uri = uri
        self.id = id
        self.encrypt = encrypt
        self.parameters = parameters
    }
}

public struct RtxParameters: Codable, Sendable, Hashable {
    public var ssrc: UInt32
    public init(ssrc: UInt32) { self.ssrc = ssrc }
}

public struct RtpEncodingParameters: Codable, Sendable, Hashable {
    public var ssrc: UInt32?
    public var rid: String?
    public var codecPayloadType: Int?
    public var rtx: RtxParameters?
    public var dtx: Bool?
    public var scalabilityMode: String?
    public var scaleResolutionDownBy: Double?
    public var maxBitrate: Int?

    public init(ssrc: UInt32? = nil, rid: String? = nil, codecPayloadType: Int? = nil, rtx: RtxParameters? = nil, dtx: Bool? = nil, scalabilityMode: String? = nil, scaleResolutionDownBy: Double? = nil, maxBitrate: Int? = nil) {
        self.ssrc = ssrc
        self.rid = rid
        self.codecPayloadType = codecPayloadType
        self.rtx = rtx
        self.dtx = dtx
        self.scalabilityMode = scalabilityMode
        self.scaleResolutionDownBy = scaleResolutionDownBy
        self.maxBitrate = maxBitrate
    }
}

public struct RtcpParameters: Codable, Sendable, Hashable {
    public var cname: String?
    public var reducedSize: Bool?
    public var mux: Bool?
    public init(cname: String? = nil, reducedSize: Bool? = true, mux: Bool? = nil) {
        self.cname = cname
        self.reducedSize = reducedSize
        self.mux = mux
    }
}

public struct RtpParameters: Codable, Sendable, Hashable {
    public var mid: String?
    public var codecs: [RtpCodecParameters]
    public var headerExtensions: [RtpHeaderExtensionParameters]?
    public var encodings: [RtpEncodingParameters]?
    public var rtcp: RtcpParameters?

    public init(mid: String? = nil, codecs: [RtpCodecParameters], headerExtensions: [RtpHeaderExtensionParameters]? = [], encodings: [RtpEncodingParameters]? = [], rtcp: RtcpParameters? = RtcpParameters()) {
        self.mid = mid
        self.codecs = codecs
        self.headerExtensions = headerExtensions
        self.encodings = encodings
        self.rtcp = rtcp
    }
}

extension String {
    /// Case-insensitive comparison for MIME types.
    func sameMime(_ other: String) -> Bool { lowercased() == other.lowercased() }
    var isRtxMime: Bool { lowercased().hasSuffix("/rtx") && count > 4 }
}
