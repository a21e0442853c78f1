import Testing
@testable import RingSFU

/// The SDP parser and writer, and the mapping of offers to RTP parameters.
/// The offers are shaped like what browsers and GStreamer send (a browser
/// publishing two simulcast layers; a player with its own payload types).
@Suite("SDP")
struct SdpTests {
    static let publishOffer = [
        "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
        "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=ice-options:trickle",
        "a=fingerprint:sha-256 AA:BB:CC", "a=setup:actpass", "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly", "a=msid:s a", "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:1001 cname:pub",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98", "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 AA:BB:CC", "a=setup:actpass", "a=mid:1",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:12 urn:example:unknown",
        "a=sendonly", "a=rtcp-mux", "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 goog-remb", "a=rtcp-fb:96 transport-cc", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
        "a=rtpmap:98 FOO/90000",
        "a=rid:l send", "a=rid:h send", "a=simulcast:send l;h",
    ].joined(separator: "\r\n") + "\r\n"

    static let roomCodecs = [opus, vp8]

    @Test func parsesWhatBrowsersSend() throws {
        let sdp = try SessionDescription(parsing: Self.publishOffer)
        #expect(sdp.media.count == 2)
        #expect(sdp.bundleMids == ["0", "1"])
        let video = sdp.media[1]
        #expect(video.kind == "video" && video.port == 9 && video.proto == "UDP/TLS/RTP/SAVPF" && video.formats == ["96", "97", "98"])
        #expect(video.mid == "1" && video.direction == "sendonly" && video.has("rtcp-rsize"))
        let codecs = try video.codecs()
        #expect(codecs.map(\.name) == ["VP8", "rtx", "FOO"])
        #expect(codecs[0].feedback.count == 4)
        #expect(codecs[1].parameters["apt"] == 96)
        let opusCodec = try sdp.media[0].codecs()[0]
        #expect(opusCodec.channels == 2 && opusCodec.parameters["useinbandfec"] == 1)
        // PT 0 has its static meaning without an rtpmap.
        #expect(try sdp.media[0].codecs()[1].name == "PCMU")
        #expect(try video.extmaps().map(\.id) == [4, 10, 11, 3, 12])
        #expect(try video.rids().map(\.id) == ["l", "h"])
        #expect(try video.simulcast()?.streams.map(\.rid) == ["l", "h"])
        #expect(try sdp.media[0].ssrcLines().first?.value == "pub")
    }

    @Test func writerRoundTrips() throws {
        let sdp = try SessionDescription(parsing: Self.publishOffer)
        let again = try SessionDescription(parsing: sdp.text)
        #expect(again == sdp)
        #expect(sdp.text.hasSuffix("a=simulcast:send l;h\r\n"))
        // LF line ends parse the same.
        #expect(try SessionDescription(parsing: Self.publishOffer.replacingCRLF) == sdp)
    }

    @Test func producerParametersFromAPublishOffer() throws {
        let caps = try Ortc.generateRouterRtpCapabilities(Self.roomCodecs)
        let sdp = try SessionDescription(parsing: Self.publishOffer)
        let video = try #require(try SdpMapping.producerParameters(sdp.media[1], router: caps))
        // The router's codecs only, in the offer's payload types, with their RTX.
        #expect(video.codecs.map(\.mimeType) == ["video/VP8", "video/rtx"])
        #expect(video.codecs.map(\.payloadType) == [96, 97])
        #expect(Set(video.codecs[0].rtcpFeedback!.map { "\($0.type) \($0.parameter ?? "")" }) == ["goog-remb ", "transport-cc ", "nack ", "nack pli"])
        // Extensions the router can receive; the unknown one is left out.
        #expect(video.headerExtensions!.map(\.id) == [4, 10, 11, 3])
        #expect(video.encodings!.map(\.rid) == ["l", "h"])
        #expect(video.mid == "1" && video.rtcp?.reducedSize == true)
        let audio = try #require(try SdpMapping.producerParameters(sdp.media[0], router: caps))
        #expect(audio.codecs.map(\.payloadType) == [111])
        #expect(audio.encodings!.map(\.ssrc) == [1001])
        #expect(audio.rtcp?.cname == "pub")
        // Nothing the router supports: no parameters (the section is rejected).
        let foo = try SessionDescription(parsing: Self.publishOffer.replacingOccurrences("VP8/90000", "BAR/90000"))
        #expect(try SdpMapping.producerParameters(foo.media[1], router: caps) == nil)
    }

    @Test func ssrcGroupsBecomeEncodings() throws {
        var text = Self.publishOffer.replacingOccurrences("a=rid:l send\r\na=rid:h send\r\na=simulcast:send l;h\r\n", "")
        text += "a=ssrc-group:FID 2001 2002\r\na=ssrc:2001 cname:pub\r\na=ssrc:2002 cname:pub\r\n"
        let caps = try Ortc.generateRouterRtpCapabilities(Self.roomCodecs)
        let video = try #require(try SdpMapping.producerParameters(try SessionDescription(parsing: text).media[1], router: caps))
        #expect(video.encodings == [RtpEncodingParameters(ssrc: 2001, rtx: RtxParameters(ssrc: 2002))])
    }

    @Test(arguments: [
        ("", 0, "empty"),
        ("v=1\r\n", 1, "v=0"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n", 4, "m= before"),
        ("v=0\r\no=- 1 IN IP4\r\n", 2, "6 fields"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", 5, "invalid port"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP\r\n", 5, "at least one format"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=bad attr\r\n", 5, "malformed attribute"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nx=1\r\n", 5, "unknown line type"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nnonsense\r\n", 5, "<type>=<value>"),
        ("v=0\r\ns=-\r\nt=0 0\r\n", 0, "missing o="),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0\u{0}0\r\n", 4, "control character"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r \n", 5, "control character"),
    ] as [(String, Int, String)])
    func rejectsMalformedDescriptions(_ text: String, line: Int, words: String) {
        #expect {
            _ = try SessionDescription(parsing: text)
        } throws: { error in
            guard let e = error as? SdpError else { return false }
            return e.line == line && e.description.contains(words)
        }
    }

    @Test func limitsHold() {
        let head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        let many = head + String(repeating: "m=audio 9 RTP/AVP 0\r\n", count: 40)
        #expect(throws: SdpError.self) { try SessionDescription(parsing: many) }
        let long = head + "a=x:" + String(repeating: "y", count: 5000) + "\r\n"
        #expect(throws: SdpError.self) { try SessionDescription(parsing: long) }
        let lines = head + String(repeating: "a=x\r\n", count: 5000)
        #expect(throws: SdpError.self) { try SessionDescription(parsing: lines) }
    }

    @Test(arguments: [
        "a=rtpmap:200 VP8/90000", "a=rtpmap:96 VP8", "a=rtpmap:96 VP8/0", "a=rtpmap:96 opus/48000/0",
        "a=extmap:0 urn:x", "a=extmap:/ urn:x", "a=ssrc:x cname:y", "a=ssrc-group:FID 1 x", "a=rid:l sideways",
        "a=simulcast:send ~", "a=fmtp:x y", "a=rtcp-fb:96",
    ])
    func rejectsMalformedAttributes(_ line: String) throws {
        var sdp = try SessionDescription(parsing: Self.publishOffer + line + "\r\n")
        // The broken line replaces the good one of its kind.
        if line.hasPrefix("a=rtpmap:96") { sdp.media[1].attributes.removeAll { $0.name == "rtpmap" && $0.value == "96 VP8/90000" } }
        if line.hasPrefix("a=simulcast") { sdp.media[1].attributes.removeAll { $0.name == "simulcast" && $0.value == "send l;h" } }
        let caps = try Ortc.generateRouterRtpCapabilities(Self.roomCodecs)
        #expect(throws: SFUError.self) { try SdpMapping.producerParameters(sdp.media[1], router: caps) }
    }

    @Test func dtlsRoleFromSetup() throws {
        let offer = try SessionDescription(parsing: Self.publishOffer)
        let (remote, setup) = try SdpMapping.remoteDtls(offer)
        #expect(remote.role == "client" && setup == "passive" && remote.fingerprints == [DtlsFingerprint(algorithm: "sha-256", value: "AA:BB:CC")])
        let passive = try SessionDescription(parsing: Self.publishOffer.replacingOccurrences("a=setup:actpass", "a=setup:passive"))
        #expect(try SdpMapping.remoteDtls(passive).answerSetup == "active")
        let odd = try SessionDescription(parsing: Self.publishOffer.replacingOccurrences("a=setup:actpass", "a=setup:sideways"))
        #expect(throws: SFUError.self) { try SdpMapping.remoteDtls(odd) }
    }
}

extension String {
    var replacingCRLF: String { split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n") }
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = "", rest = Substring(self)
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

/// Offer/answer on real transports: what a WHIP publisher and a WHEP
/// player get, and consumers sending with the player's own numbers.
@Suite("SDP offer/answer")
struct SdpAnswerTests {
    static let playOffer = [
        "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE v",
        "m=video 9 UDP/TLS/RTP/SAVPF 120 121", "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:play", "a=ice-pwd:playplayplayplayplayplay", "a=fingerprint:sha-256 DD:EE:FF", "a=setup:actpass",
        "a=mid:v", "a=recvonly", "a=rtcp-mux", "a=rtcp-rsize",
        "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:13 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=rtpmap:120 VP8/90000", "a=rtcp-fb:120 nack", "a=rtcp-fb:120 nack pli", "a=rtcp-fb:120 goog-remb",
        "a=rtpmap:121 rtx/90000", "a=fmtp:121 apt=120",
    ].joined(separator: "\r\n") + "\r\n"

    @Test @RingSFUActor func publishAndPlay() async throws {
        let worker = try await testWorker()
        defer { worker.close() }
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let ingest = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let (answer, producers) = try ingest.answerPublishOffer(SessionDescription(parsing: SdpTests.publishOffer))
        #expect(producers.map(\.kind) == [.audio, .video])
        #expect(producers[1].type == .simulcast)
        let text = answer.text
        for line in ["a=ice-lite", "a=group:BUNDLE 0 1", "a=setup:passive", "a=recvonly", "a=rid:l recv", "a=simulcast:recv l;h",
                     "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"] {
            #expect(text.contains(line + "\r\n"), "answer lacks \(line)")
        }
        #expect(text.contains("127.0.0.1 \(ingest.iceCandidates[0].port) typ host"))
        #expect(!text.contains("FOO"))
        #expect(ingest.dtlsParameters.fingerprints.contains { text.contains("a=fingerprint:sha-256 \($0.value)") })

        let player = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let (playAnswer, consumers) = try player.answerPlaybackOffer(SessionDescription(parsing: Self.playOffer), producers: producers, streamId: "s")
        let consumer = try #require(consumers.first)
        #expect(consumers.count == 1 && consumer.kind == .video && consumer.type == .simulcast)
        // The player's numbers on the wire, the router's behind them.
        #expect(consumer.rtpParameters.codecs.map(\.payloadType) == [120, 121])
        #expect(consumer.rtpParameters.codecs[1].parameters?["apt"] == 120)
        #expect(consumer.rtpParameters.headerExtensions!.map(\.id).sorted() == [9, 13])
        #expect(consumer.rtpParameters.mid == "v")
        let routerVp8 = try #require(producers[1].consumableRtpParameters.codecs.first?.payloadType)
        let spec = consumer.forwarderSpec()
        #expect(spec.payloadTypes.contains { $0 == (UInt8(routerVp8), 120) })
        #expect(spec.rtxPayloadTypes.contains { $0.0 == UInt8(routerVp8) && $0.1 == 121 })
        #expect(spec.extensionIds.contains { $0 == (1, 9) })
        let played = playAnswer.text
        for line in ["a=sendonly", "a=rtpmap:120 VP8/90000", "a=fmtp:121 apt=120", "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid", "a=msid:s \(consumer.id)"] {
            #expect(played.contains(line + "\r\n"), "play answer lacks \(line)")
        }
        #expect(played.contains("a=ssrc-group:FID \(consumer.rtpParameters.encodings![0].ssrc!) "))
    }

    @Test @RingSFUActor func unusableOffersCreateNothing() async throws {
        let worker = try await testWorker()
        defer { worker.close() }
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        let unsupported = SdpTests.publishOffer.replacingOccurrences("VP8/90000", "BAR/90000").replacingOccurrences("opus/48000/2", "BAZ/48000/2")
        #expect(throws: SFUError.unsupported("no m-section of the offer sends a codec this server supports (audio/opus, video/VP8)")) {
            try t.answerPublishOffer(SessionDescription(parsing: unsupported))
        }
        // Nothing to play: no producer.
        #expect(throws: SFUError.self) { try t.answerPlaybackOffer(SessionDescription(parsing: Self.playOffer), producers: [], streamId: "s") }
        #expect(t.producers.isEmpty && t.consumers.isEmpty)
        // The transport can still take a good offer.
        #expect(try t.answerPublishOffer(SessionDescription(parsing: SdpTests.publishOffer)).producers.count == 2)
    }
}
