import RingSFU

/// What a router with the rooms' codecs offers, for the SDP mapping.
let sdpFuzzCapabilities = RtpCapabilities(
    codecs: [
        RtpCodecCapability(kind: .audio, mimeType: "audio/opus", preferredPayloadType: 100, clockRate: 48000, channels: 2,
                           rtcpFeedback: [RtcpFeedback(type: "transport-cc")]),
        RtpCodecCapability(kind: .video, mimeType: "video/VP8", preferredPayloadType: 101, clockRate: 90000,
                           rtcpFeedback: [RtcpFeedback(type: "nack"), RtcpFeedback(type: "nack", parameter: "pli")]),
        RtpCodecCapability(kind: .video, mimeType: "video/rtx", preferredPayloadType: 102, clockRate: 90000, parameters: ["apt": 101]),
    ],
    headerExtensions: [
        RtpHeaderExtension(kind: .video, uri: "urn:ietf:params:rtp-hdrext:sdes:mid", preferredId: 1),
        RtpHeaderExtension(kind: .video, uri: "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", preferredId: 2, direction: "recvonly"),
    ])

/// SDP from the network: parsing never traps; what parses is written back
/// to text that parses to the same description; the typed views and the
/// mapping to RTP parameters either answer or throw.
func sdp(_ p: UnsafeMutableRawPointer, _ count: Int) {
    let text = String(decoding: UnsafeRawBufferPointer(start: p, count: count), as: UTF8.self)
    guard let parsed = try? SessionDescription(parsing: text) else { return }
    let again = try? SessionDescription(parsing: parsed.text)
    promise(again == parsed, "written SDP parses to the same description")
    _ = parsed.bundleMids
    _ = try? SdpMapping.check(parsed)
    _ = try? SdpMapping.remoteDtls(parsed)
    for m in parsed.media {
        _ = (m.mid, m.direction, m.isActive)
        _ = try? m.codecs()
        _ = try? m.extmaps()
        _ = try? m.ssrcLines()
        _ = try? m.ssrcGroups()
        _ = try? m.rids()
        _ = try? m.simulcast()
        _ = try? m.fingerprints()
        if let params = try? SdpMapping.producerParameters(m, router: sdpFuzzCapabilities) {
            promise(!params.codecs.isEmpty, "producer parameters have a codec")
            promise(params.codecs.allSatisfy { (0...127).contains($0.payloadType) }, "payload types in range")
        }
        _ = try? SdpMapping.receiveCapabilities(m)
    }
}
