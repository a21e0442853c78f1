/// SDP offer/answer on a WebRtcTransport, for endpoints that speak SDP
/// rather than mediasoup's parameters (WHIP publishers, WHEP players).
/// The remote always offers (RFC 9725); we answer as ICE-lite with our
/// candidates, bundle everything on this one transport, and take the DTLS
/// role the offer leaves us (server for `actpass`).
extension WebRtcTransport {
    /// Answers an offer to send media: one producer per m-section that
    /// sends a codec the router supports (simulcast rids honoured); other
    /// sections are rejected. Connects DTLS with the offer's fingerprint.
    /// Throws before creating anything if the offer is unusable.
    public func answerPublishOffer(_ offer: SessionDescription, appData: AppData = [:]) throws(SFUError) -> (answer: SessionDescription, producers: [Producer]) {
        try checkOpen()
        guard let router else { throw .invalidState("Transport closed") }
        try SdpMapping.check(offer)
        let (remote, setup) = try SdpMapping.remoteDtls(offer)
        var plans: [(SdpMedia, RtpParameters?)] = []
        for m in offer.media {
            guard SdpMapping.isRtp(m), m.direction == "sendonly" || m.direction == "sendrecv" else {
                plans.append((m, nil))
                continue
            }
            plans.append((m, try SdpMapping.producerParameters(m, router: router.rtpCapabilities)))
        }
        guard plans.contains(where: { $0.1 != nil }) else {
            throw .unsupported("no m-section of the offer sends a codec this server supports (\(supportedCodecNames(router)))")
        }
        var producers: [Producer] = []
        do {
            for case (let m, let params?) in plans {
                producers.append(try produce(ProducerOptions(kind: MediaKind(rawValue: m.kind)!, rtpParameters: params, appData: appData)))
            }
            try connect(dtlsParameters: remote)
        } catch {
            for p in producers { p.close() }
            throw error
        }
        let common = SdpMapping.transportAttributes(iceParameters, dtlsParameters.fingerprints, iceCandidates, setup: setup)
        var answer = answerSkeleton(offer)
        var next = producers.makeIterator()
        for (m, params) in plans {
            guard params != nil, let p = next.next() else {
                answer.media.append(SdpMapping.rejected(m))
                continue
            }
            var extra: [SdpAttribute] = []
            if let sim = try? m.simulcast(), sim.direction == "send" {
                extra = sim.streams.map { SdpAttribute("rid", "\($0.rid) recv") }
                extra.append(SdpAttribute("simulcast", "recv " + sim.streams.map { ($0.paused ? "~" : "") + $0.rid }.joined(separator: ";")))
            }
            answer.media.append(answerSection(m, direction: "recvonly", p.rtpParameters, common: common, extra: extra))
        }
        bundle(&answer, offer)
        return (answer, producers)
    }

    /// Answers an offer to receive media: each receiving audio or video
    /// m-section gets a consumer of the next producer of its kind in
    /// `producers` (sent with the offer's payload types and extension ids);
    /// sections left over are rejected. `streamId` groups the tracks
    /// (`a=msid`) so that the player synchronises them.
    public func answerPlaybackOffer(_ offer: SessionDescription, producers: [Producer], streamId: String) throws(SFUError) -> (answer: SessionDescription, consumers: [Consumer]) {
        try checkOpen()
        guard router != nil else { throw .invalidState("Transport closed") }
        try SdpMapping.check(offer)
        let (remote, setup) = try SdpMapping.remoteDtls(offer)
        var plans: [(SdpMedia, Producer?, RtpCapabilities)] = []
        var used = Set<String>()
        for m in offer.media {
            guard SdpMapping.isRtp(m), m.direction == "recvonly" || m.direction == "sendrecv", let kind = MediaKind(rawValue: m.kind) else {
                plans.append((m, nil, RtpCapabilities()))
                continue
            }
            let caps = try SdpMapping.receiveCapabilities(m)
            let producer = producers.first { p in
                !p.closed && !used.contains(p.id) && p.kind == kind && ((try? Ortc.canConsume(p.consumableRtpParameters, caps: caps)) ?? false)
            }
            if let producer { used.insert(producer.id) }
            plans.append((m, producer, caps))
        }
        guard plans.contains(where: { $0.1 != nil }) else {
            throw .unsupported(producers.isEmpty ? "nothing to play: no producer" : "no m-section of the offer can receive the producers' codecs")
        }
        var consumers: [Consumer] = []
        do {
            for case (let m, let p?, let caps) in plans {
                consumers.append(try consume(ConsumerOptions(producerId: p.id, rtpCapabilities: caps, mid: m.mid), remoteIds: true))
            }
            try connect(dtlsParameters: remote)
        } catch {
            for c in consumers { c.close() }
            throw error
        }
        let common = SdpMapping.transportAttributes(iceParameters, dtlsParameters.fingerprints, iceCandidates, setup: setup)
        var answer = answerSkeleton(offer)
        var next = consumers.makeIterator()
        for (m, p, _) in plans {
            guard p != nil, let c = next.next() else {
                answer.media.append(SdpMapping.rejected(m))
                continue
            }
            var attrs = [SdpAttribute("msid", "\(streamId) \(c.id)")]
            let cname = c.rtpParameters.rtcp?.cname ?? streamId
            if let e = c.rtpParameters.encodings?.first, let ssrc = e.ssrc {
                if let rtx = e.rtx?.ssrc {
                    attrs.append(SdpAttribute("ssrc-group", "FID \(ssrc) \(rtx)"))
                }
                attrs.append(SdpAttribute("ssrc", "\(ssrc) cname:\(cname)"))
                attrs.append(SdpAttribute("ssrc", "\(ssrc) msid:\(streamId) \(c.id)"))
                if let rtx = e.rtx?.ssrc {
                    attrs.append(SdpAttribute("ssrc", "\(rtx) cname:\(cname)"))
                    attrs.append(SdpAttribute("ssrc", "\(rtx) msid:\(streamId) \(c.id)"))
                }
            }
            answer.media.append(answerSection(m, direction: "sendonly", c.rtpParameters, common: common, extra: attrs))
        }
        bundle(&answer, offer)
        return (answer, consumers)
    }

    /// New ICE credentials for an ICE restart, as the `a=` lines of an
    /// SDP fragment (RFC 8840) for a PATCH answer.
    public func restartIceFragment() throws(SFUError) -> String {
        let ice = try restartIce()
        var lines = "a=ice-lite\r\na=ice-ufrag:\(ice.usernameFragment)\r\na=ice-pwd:\(ice.password)\r\n"
        for c in iceCandidates { lines += "a=candidate:\(SdpMapping.candidateLine(c))\r\n" }
        lines += "a=end-of-candidates\r\n"
        return lines
    }

    /// An accepted m-section of an answer: the offer's mid, our transport
    /// lines, the direction, rtcp-mux (and rtcp-rsize when offered), the
    /// RTP lines of `params`, then `extra`.
    private func answerSection(_ m: SdpMedia, direction: String, _ params: RtpParameters, common: [SdpAttribute], extra: [SdpAttribute]) -> SdpMedia {
        var attrs = [SdpAttribute("mid", m.mid ?? "")] + common + [SdpAttribute(direction), SdpAttribute("rtcp-mux")]
        if m.has("rtcp-rsize") { attrs.append(SdpAttribute("rtcp-rsize")) }
        attrs += SdpMapping.rtpAttributes(params) + extra
        return SdpMedia(kind: m.kind, port: 9, proto: m.proto, formats: params.codecs.map { String($0.payloadType) },
                        connection: "IN IP4 0.0.0.0", attributes: attrs)
    }

    private func answerSkeleton(_ offer: SessionDescription) -> SessionDescription {
        let sessionId = String(UInt64.random(in: 1_000_000_000...9_999_999_999))
        var answer = SessionDescription(origin: SdpOrigin(username: "ringsfu", sessionId: sessionId, sessionVersion: "1"))
        answer.attributes = [SdpAttribute("ice-lite")]
        if offer.attributes.contains(where: { $0.name == "extmap-allow-mixed" }) { answer.attributes.append(SdpAttribute("extmap-allow-mixed")) }
        answer.attributes.append(SdpAttribute("msid-semantic", " WMS *"))
        return answer
    }

    /// `a=group:BUNDLE` of the accepted sections, when the offer bundles.
    private func bundle(_ answer: inout SessionDescription, _ offer: SessionDescription) {
        guard !offer.bundleMids.isEmpty else { return }
        let mids = answer.media.filter { $0.port != 0 }.compactMap(\.mid)
        answer.attributes.insert(SdpAttribute("group", (["BUNDLE"] + mids).joined(separator: " ")), at: 1)
    }

    private func supportedCodecNames(_ router: Router) -> String {
        (router.rtpCapabilities.codecs ?? []).filter { !$0.mimeType.isRtxMime }.map(\.mimeType).joined(separator: ", ")
    }
}
