import Testing
import RingSFUTestSupport
@testable import RingSFU

/// ORTC validation and mapping, written as tables of inputs with the
/// expected error type or the expected mapped parameters.
@Suite("ORTC")
struct OrtcTests {
    // MARK: Router capabilities

    @Test func routerCapabilitiesPayloadTypes() throws {
        let caps = try Ortc.generateRouterRtpCapabilities([
            opus,
            RtpCodecCapability(kind: .video, mimeType: "video/VP8", preferredPayloadType: 125, clockRate: 90000),
            RtpCodecCapability(kind: .video, mimeType: "video/H264", clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "42e01f"]),
            RtpCodecCapability(kind: .audio, mimeType: "audio/PCMU", clockRate: 8000),
        ])
        let summary = caps.codecs!.map { "\($0.mimeType)/\($0.preferredPayloadType!)" }
        #expect(summary == ["audio/opus/100", "video/VP8/125", "video/rtx/101", "video/H264/102", "video/rtx/103", "audio/PCMU/0"])
        #expect(caps.codecs![2].parameters?["apt"] == 125)
        #expect(caps.codecs![4].parameters?["apt"] == 102)
        // Supported parameters merged with the app's, the app winning.
        #expect(caps.codecs![3].parameters?["level-asymmetry-allowed"] == 1)
        #expect(caps.codecs![3].parameters?["packetization-mode"] == 1)
        // The built-in feedback is used.
        #expect(caps.codecs![1].rtcpFeedback?.contains(RtcpFeedback(type: "nack", parameter: "pli")) == true)
        #expect(caps.headerExtensions?.contains { $0.uri == "urn:ietf:params:rtp-hdrext:sdes:mid" && $0.preferredId == 1 } == true)
    }

    @Test(arguments: [
        // (codecs, expected error type)
        ([RtpCodecCapability(mimeType: "audio/opus", clockRate: 48000)], "UnsupportedError"), // channels default to 1
        ([RtpCodecCapability(mimeType: "video/FOO", clockRate: 90000)], "UnsupportedError"),
        ([RtpCodecCapability(mimeType: "VP8", clockRate: 90000)], "TypeError"),
        ([RtpCodecCapability(mimeType: "text/VP8", clockRate: 90000)], "TypeError"),
        ([RtpCodecCapability(mimeType: "video/VP8", clockRate: 0)], "TypeError"),
        ([RtpCodecCapability(mimeType: "video/VP8", preferredPayloadType: 200, clockRate: 90000)], "TypeError"),
        ([RtpCodecCapability(mimeType: "video/VP8", preferredPayloadType: 100, clockRate: 90000),
          RtpCodecCapability(mimeType: "video/VP9", preferredPayloadType: 100, clockRate: 90000)], "TypeError"),
        (Array(repeating: RtpCodecCapability(mimeType: "audio/opus", clockRate: 48000, channels: 2), count: 40), "Error"),
    ] as [([RtpCodecCapability], String)])
    func routerCapabilitiesErrors(codecs: [RtpCodecCapability], type: String) {
        do {
            _ = try Ortc.generateRouterRtpCapabilities(codecs)
            Issue.record("expected \(type)")
        } catch {
            #expect(error.typeName == type)
        }
    }

    @Test func codecMatching() {
        let h264a = RtpCodecCapability(mimeType: "video/H264", clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "42e01f"])
        let h264b = RtpCodecCapability(mimeType: "video/h264", clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "42e034"])
        let h264main = RtpCodecCapability(mimeType: "video/H264", clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "4d001f"])
        let h264mode0 = RtpCodecCapability(mimeType: "video/H264", clockRate: 90000, parameters: ["profile-level-id": "42e01f"])
        #expect(Ortc.matchCodecs(h264a, h264b, strict: true)) // same profile, other level
        #expect(!Ortc.matchCodecs(h264a, h264main, strict: true))
        #expect(Ortc.matchCodecs(h264a, h264main, strict: false))
        #expect(!Ortc.matchCodecs(h264a, h264mode0, strict: true))
        let vp9p0 = RtpCodecCapability(mimeType: "video/VP9", clockRate: 90000)
        let vp9p2 = RtpCodecCapability(mimeType: "video/VP9", clockRate: 90000, parameters: ["profile-id": 2])
        #expect(!Ortc.matchCodecs(vp9p0, vp9p2, strict: true))
        #expect(Ortc.matchCodecs(vp9p0, vp9p2, strict: false))
        let stereo = RtpCodecCapability(mimeType: "audio/opus", clockRate: 48000, channels: 2)
        let mono = RtpCodecCapability(mimeType: "audio/opus", clockRate: 48000, channels: 1)
        #expect(!Ortc.matchCodecs(stereo, mono, strict: false))
        #expect(!Ortc.matchCodecs(stereo, RtpCodecCapability(mimeType: "audio/opus", clockRate: 16000, channels: 2), strict: false))
    }

    @Test func h264ProfileLevelAnswer() {
        let router: [String: ParameterValue] = ["level-asymmetry-allowed": 1, "profile-level-id": "42e01f"]
        let offer: [String: ParameterValue] = ["level-asymmetry-allowed": 1, "profile-level-id": "42e034"]
        #expect(H264ProfileLevelId.answer(local: router, remote: offer) == .some("42e01f"))
        let noAsym: [String: ParameterValue] = ["profile-level-id": "42e00b"]
        #expect(H264ProfileLevelId.answer(local: router, remote: noAsym) == .some("42e00b"))
        #expect(H264ProfileLevelId.answer(local: router, remote: ["profile-level-id": "640c1f"]) == nil)
        #expect(H264ProfileLevelId("zzzzzz") == nil)
        #expect(H264ProfileLevelId("42f00b")?.level == 0) // level 1b
    }

    // MARK: Producer -> router mapping

    func routerCaps() throws -> RtpCapabilities {
        try Ortc.generateRouterRtpCapabilities([opus, vp8, RtpCodecCapability(mimeType: "video/H264", clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "42e01f"])])
    }

    @Test func producerMappingWithRtx() throws {
        let caps = try routerCaps()
        var params = RtpParameters(mid: "v", codecs: [
            RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000),
            RtpCodecParameters(mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: ["apt": 96]),
        ], headerExtensions: [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 4)],
           encodings: [RtpEncodingParameters(ssrc: 1111, rtx: RtxParameters(ssrc: 2222))])
        params = try Ortc.validate(params)
        let mapping = try Ortc.producerMapping(&params, kind: .video, router: caps)
        let vp8Pt = caps.codecs!.first { $0.mimeType == "video/VP8" }!.preferredPayloadType!
        let rtxPt = caps.codecs!.first { $0.mimeType == "video/rtx" && $0.parameters?["apt"]?.intValue == vp8Pt }!.preferredPayloadType!
        #expect(mapping.codecs == [.init(payloadType: 96, mappedPayloadType: vp8Pt), .init(payloadType: 97, mappedPayloadType: rtxPt)])
        #expect(mapping.encodings.count == 1 && mapping.encodings[0].ssrc == 1111)
        #expect((100_000_000...999_999_999).contains(mapping.encodings[0].mappedSsrc))
        let consumable = Ortc.consumableParameters(kind: .video, params: params, router: caps, mapping: mapping)
        #expect(consumable.codecs.map(\.payloadType) == [vp8Pt, rtxPt])
        #expect(consumable.encodings?.first?.ssrc == mapping.encodings[0].mappedSsrc)
        #expect(consumable.encodings?.first?.rtx == nil)
        // Router's sendrecv/sendonly video extensions only: no rid / repaired rid.
        #expect(consumable.headerExtensions?.contains { $0.uri.contains("rtp-stream-id") } == false)
        #expect(consumable.headerExtensions?.contains { $0.uri == "urn:ietf:params:rtp-hdrext:sdes:mid" && $0.id == 1 } == true)
    }

    @Test(arguments: [
        // (codecs, expected error type) for transport.produce's validation and mapping
        ([RtpCodecParameters(mimeType: "video/H265X", payloadType: 96, clockRate: 90000)], "UnsupportedError"),
        ([RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000),
          RtpCodecParameters(mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: ["apt": 98])], "TypeError"),
        ([RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000),
          RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000)], "TypeError"),
        ([RtpCodecParameters(mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: ["apt": 97])], "TypeError"),
        ([RtpCodecParameters(mimeType: "video/H264", payloadType: 96, clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "640c1f"])], "UnsupportedError"),
        ([], "TypeError"),
    ] as [([RtpCodecParameters], String)])
    func producerErrors(codecs: [RtpCodecParameters], type: String) throws {
        let caps = try routerCaps()
        do {
            var params = try Ortc.validate(RtpParameters(codecs: codecs, encodings: [RtpEncodingParameters(ssrc: 1)]))
            _ = try Ortc.producerMapping(&params, kind: .video, router: caps)
            Issue.record("expected \(type)")
        } catch {
            #expect(error.typeName == type)
        }
    }

    @Test func h264ProducerGetsNegotiatedProfile() throws {
        let caps = try routerCaps()
        var params = try Ortc.validate(RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/H264", payloadType: 102, clockRate: 90000, parameters: ["packetization-mode": 1, "profile-level-id": "42e034", "level-asymmetry-allowed": 1])], encodings: [RtpEncodingParameters(ssrc: 5)]))
        _ = try Ortc.producerMapping(&params, kind: .video, router: caps)
        #expect(params.codecs[0].parameters?["profile-level-id"] == "42e01f")
    }

    // MARK: Consumer parameters

    @Test func consumerParametersFollowRemoteCapabilities() throws {
        let caps = try routerCaps()
        var params = try Ortc.validate(RtpParameters(codecs: [
            RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000),
            RtpCodecParameters(mimeType: "video/rtx", payloadType: 97, clockRate: 90000, parameters: ["apt": 96]),
        ], encodings: [RtpEncodingParameters(ssrc: 1, rtx: RtxParameters(ssrc: 2))]))
        let mapping = try Ortc.producerMapping(&params, kind: .video, router: caps)
        let consumable = Ortc.consumableParameters(kind: .video, params: params, router: caps, mapping: mapping)

        // Full router capabilities as remote: RTX kept, rtx.ssrc = ssrc + 1.
        let full = try Ortc.consumerParameters(consumable, caps: caps, enableRtx: true, pipe: false)
        #expect(full.codecs.count == 2)
        let e = try #require(full.encodings?.first)
        #expect(e.rtx?.ssrc == e.ssrc! + 1)
        // transport-cc present -> goog-remb removed.
        #expect(full.codecs[0].rtcpFeedback?.contains { $0.type == "goog-remb" } == false)
        #expect(try Ortc.canConsume(consumable, caps: caps))

        // Without RTX: no rtx codec, no plain nack, no encoding rtx.
        let noRtx = try Ortc.consumerParameters(consumable, caps: caps, enableRtx: false, pipe: false)
        #expect(noRtx.codecs.map(\.mimeType) == ["video/VP8"])
        #expect(noRtx.codecs[0].rtcpFeedback?.contains(RtcpFeedback(type: "nack", parameter: "")) == false)
        #expect(noRtx.codecs[0].rtcpFeedback?.contains(RtcpFeedback(type: "nack", parameter: "pli")) == true)
        #expect(noRtx.encodings?.first?.rtx == nil)

        // A remote without VP8 cannot consume.
        let h264Only = RtpCapabilities(codecs: caps.codecs!.filter { $0.mimeType.hasSuffix("H264") || $0.mimeType.hasSuffix("rtx") }, headerExtensions: [])
        #expect(try Ortc.canConsume(consumable, caps: h264Only) == false)
        #expect(throws: SFUError.unsupported("no compatible media codecs")) {
            try Ortc.consumerParameters(consumable, caps: h264Only, enableRtx: true, pipe: false)
        }
        // Extensions only where the remote has the same id and uri.
        let shifted = RtpCapabilities(codecs: caps.codecs, headerExtensions: caps.headerExtensions!.map { var x = $0; if x.uri.hasSuffix("sdes:mid") { x.preferredId = 9 }; return x })
        let p = try Ortc.consumerParameters(consumable, caps: shifted, enableRtx: true, pipe: false)
        #expect(p.headerExtensions?.contains { $0.uri.hasSuffix("sdes:mid") } == false)
        #expect(p.headerExtensions?.contains { $0.uri.hasSuffix("abs-send-time") } == true)
    }

    @Test func producerTypes() throws {
        func type(_ mime: String, _ encodings: [RtpEncodingParameters]) throws -> String {
            try Producer.type(of: RtpParameters(codecs: [RtpCodecParameters(mimeType: mime, payloadType: 96, clockRate: 90000)], encodings: encodings)).rawValue
        }
        #expect(try type("video/VP8", [RtpEncodingParameters(ssrc: 1)]) == "simple")
        #expect(try type("video/VP8", [RtpEncodingParameters(ssrc: 1), RtpEncodingParameters(ssrc: 2)]) == "simulcast")
        #expect(try type("video/VP8", [RtpEncodingParameters(ssrc: 1, scalabilityMode: "L1T3")]) == "simulcast")
        #expect(try type("video/VP9", [RtpEncodingParameters(ssrc: 1, scalabilityMode: "L3T3")]) == "svc")
        #expect(throws: SFUError.self) { try type("video/VP9", [RtpEncodingParameters(ssrc: 1), RtpEncodingParameters(ssrc: 2)]) }
    }

    @Test func rtcpReducedSizeIsForced() throws {
        let p = try Ortc.validate(RtpParameters(codecs: [RtpCodecParameters(mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2)], rtcp: RtcpParameters(cname: "x", reducedSize: false)))
        #expect(p.rtcp?.reducedSize == true)
        #expect(p.encodings?.isEmpty == true)
    }

    @Test func decodingErrorsNameTheField() {
        let json: JSONValue = .object(["listenInfo": .object(["protocol": .string("udp")])])
        #expect(throws: SFUError.invalidArgument("missing params.listenInfo.ip")) { _ = try json.decode(PlainTransportOptions.self) }
        let bad: JSONValue = .object(["kind": .string("audio"), "rtpParameters": .object(["codecs": .array([.object(["mimeType": .string("audio/opus"), "payloadType": .string("x"), "clockRate": .number(48000)])])])])
        do {
            _ = try bad.decode(ProducerOptions.self)
            Issue.record("expected a TypeError")
        } catch {
            #expect(error.message.contains("params.rtpParameters.codecs[0].payloadType"))
        }
    }
}

@Suite("ORTC codecs")
struct OrtcCodecTests {
    @Test(arguments: [
        ("audio/multiopus", 48000, 6, ["channel_mapping": "0,4,1,2,3,5", "num_streams": 4, "coupled_streams": 2] as [String: ParameterValue], true),
        ("audio/multiopus", 48000, 6, ["channel_mapping": "0,4,1,2,3,5", "num_streams": 3, "coupled_streams": 2] as [String: ParameterValue], false),
        ("video/H265", 90000, 0, [:] as [String: ParameterValue], true),
        ("video/AV1", 90000, 0, [:] as [String: ParameterValue], true),
        ("video/VP9", 90000, 0, ["profile-id": 2] as [String: ParameterValue], true),
        ("audio/G722", 8000, 1, [:] as [String: ParameterValue], true),
        ("audio/opus", 48000, 1, [:] as [String: ParameterValue], false),
    ] as [(String, Int, Int, [String: ParameterValue], Bool)])
    func supported(mime: String, rate: Int, channels: Int, params: [String: ParameterValue], ok: Bool) {
        let codec = RtpCodecCapability(mimeType: mime, clockRate: rate, channels: channels == 0 ? nil : channels, parameters: params)
        do {
            let caps = try Ortc.generateRouterRtpCapabilities([codec])
            #expect(ok)
            let c = caps.codecs![0]
            #expect(c.mimeType.lowercased() == mime.lowercased())
            if mime == "audio/G722" { #expect(c.preferredPayloadType == 9) }
            if mime.hasPrefix("video/") { #expect(caps.codecs![1].mimeType == "video/rtx") }
            if mime == "video/VP9" { #expect(c.parameters?["profile-id"] == 2) }
        } catch {
            #expect(!ok)
            #expect(error.typeName == "UnsupportedError")
        }
    }

    @Test func pipeParametersKeepEveryEncoding() throws {
        let caps = try Ortc.generateRouterRtpCapabilities([RtpCodecCapability(mimeType: "video/VP8", clockRate: 90000)])
        var params = try Ortc.validate(RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000)],
            headerExtensions: [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 1)],
            encodings: [RtpEncodingParameters(ssrc: 1), RtpEncodingParameters(ssrc: 2), RtpEncodingParameters(ssrc: 3)]))
        let mapping = try Ortc.producerMapping(&params, kind: .video, router: caps)
        let consumable = Ortc.consumableParameters(kind: .video, params: params, router: caps, mapping: mapping)
        let pipe = Ortc.pipeConsumerParameters(consumable, enableRtx: false)
        #expect(pipe.encodings?.count == 3)
        #expect(Set(pipe.encodings!.map { $0.ssrc! }).count == 3)
        #expect(pipe.codecs.allSatisfy { !$0.mimeType.isRtxMime })
        #expect(pipe.headerExtensions?.contains { $0.uri.hasSuffix("sdes:mid") || $0.uri.contains("transport-wide") || $0.uri.contains("abs-send-time") } == false)
        #expect(pipe.codecs[0].rtcpFeedback?.allSatisfy { ($0.type == "nack" && $0.parameter == "pli") || $0.type == "ccm" } == true)
    }
}
