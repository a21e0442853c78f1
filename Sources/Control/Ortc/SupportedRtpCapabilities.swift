/// Every codec and header extension RingSFU can route, with the payload
/// types and extension ids it prefers. Routers take their capabilities from
/// this list, in this order, so the numbering matches what mediasoup-based
/// clients expect.
enum SupportedRtpCapabilities {
    private static let audioFeedback = [RtcpFeedback(type: "nack", parameter: ""), RtcpFeedback(type: "transport-cc", parameter: "")]
    private static let transportCc = [RtcpFeedback(type: "transport-cc", parameter: "")]
    private static let videoFeedback = [
        RtcpFeedback(type: "nack", parameter: ""),
        RtcpFeedback(type: "nack", parameter: "pli"),
        RtcpFeedback(type: "ccm", parameter: "fir"),
        RtcpFeedback(type: "goog-remb", parameter: ""),
        RtcpFeedback(type: "transport-cc", parameter: ""),
    ]

    private static func audio(_ name: String, _ rate: Int, channels: Int = 1, pt: Int? = nil, params: [String: ParameterValue] = [:], fb: [RtcpFeedback]) -> RtpCodecCapability {
        RtpCodecCapability(kind: .audio, mimeType: "audio/\(name)", preferredPayloadType: pt, clockRate: rate, channels: channels, parameters: params, rtcpFeedback: fb)
    }
    private static func video(_ name: String, params: [String: ParameterValue] = [:]) -> RtpCodecCapability {
        RtpCodecCapability(kind: .video, mimeType: "video/\(name)", clockRate: 90000, parameters: params, rtcpFeedback: videoFeedback)
    }

    static let codecs: [RtpCodecCapability] = [
        audio("opus", 48000, channels: 2, fb: audioFeedback),
        audio("multiopus", 48000, channels: 4, params: ["channel_mapping": "0,1,2,3", "num_streams": 2, "coupled_streams": 2], fb: audioFeedback),
        audio("multiopus", 48000, channels: 6, params: ["channel_mapping": "0,4,1,2,3,5", "num_streams": 4, "coupled_streams": 2], fb: audioFeedback),
        audio("multiopus", 48000, channels: 8, params: ["channel_mapping": "0,6,1,2,3,4,5,7", "num_streams": 5, "coupled_streams": 3], fb: audioFeedback),
        audio("PCMU", 8000, pt: 0, fb: transportCc),
        audio("PCMA", 8000, pt: 8, fb: transportCc),
        audio("ISAC", 32000, fb: transportCc),
        audio("ISAC", 16000, fb: transportCc),
        audio("G722", 8000, pt: 9, fb: transportCc),
        audio("iLBC", 8000, fb: transportCc),
        audio("SILK", 24000, fb: transportCc),
        audio("SILK", 16000, fb: transportCc),
        audio("SILK", 12000, fb: transportCc),
        audio("SILK", 8000, fb: transportCc),
        audio("CN", 32000, pt: 13, fb: []),
        audio("CN", 16000, pt: 13, fb: []),
        audio("CN", 8000, pt: 13, fb: []),
        audio("telephone-event", 48000, fb: []),
        audio("telephone-event", 32000, fb: []),
        audio("telephone-event", 16000, fb: []),
        audio("telephone-event", 8000, fb: []),
        video("VP8"),
        video("VP9"),
        video("H264", params: ["level-asymmetry-allowed": 1]),
        video("H264-SVC", params: ["level-asymmetry-allowed": 1]),
        video("H265", params: ["level-asymmetry-allowed": 1]),
        video("AV1"),
    ]

    enum Uri {
        static let mid = "urn:ietf:params:rtp-hdrext:sdes:mid"
        static let rid = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
        static let rrid = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
        static let absSendTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
        static let transportWideCc = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
        static let frameMarking07 = "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07"
        static let frameMarking = "urn:ietf:params:rtp-hdrext:framemarking"
        static let audioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
        static let videoOrientation = "urn:3gpp:video-orientation"
        static let toffset = "urn:ietf:params:rtp-hdrext:toffset"
        static let absCaptureTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
        static let playoutDelay = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
        static let dependencyDescriptor = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
    }

    static let headerExtensions: [RtpHeaderExtension] = [
        .init(kind: .audio, uri: Uri.mid, preferredId: 1),
        .init(kind: .video, uri: Uri.mid, preferredId: 1),
        .init(kind: .video, uri: Uri.rid, preferredId: 2, direction: "recvonly"),
        .init(kind: .video, uri: Uri.rrid, preferredId: 3, direction: "recvonly"),
        .init(kind: .audio, uri: Uri.absSendTime, preferredId: 4),
        .init(kind: .video, uri: Uri.absSendTime, preferredId: 4),
        .init(kind: .audio, uri: Uri.transportWideCc, preferredId: 5, direction: "recvonly"),
        .init(kind: .video, uri: Uri.transportWideCc, preferredId: 5),
        .init(kind: .video, uri: Uri.frameMarking07, preferredId: 6),
        .init(kind: .video, uri: Uri.frameMarking, preferredId: 7),
        .init(kind: .audio, uri: Uri.audioLevel, preferredId: 10),
        .init(kind: .video, uri: Uri.videoOrientation, preferredId: 11),
        .init(kind: .video, uri: Uri.toffset, preferredId: 12),
        .init(kind: .audio, uri: Uri.absCaptureTime, preferredId: 13),
        .init(kind: .video, uri: Uri.absCaptureTime, preferredId: 13),
        .init(kind: .audio, uri: Uri.playoutDelay, preferredId: 14),
        .init(kind: .video, uri: Uri.playoutDelay, preferredId: 14),
        // 8 as mediasoup: the one-byte form (ids 1-14) is what browsers send.
        .init(kind: .video, uri: Uri.dependencyDescriptor, preferredId: 8),
    ]
}
