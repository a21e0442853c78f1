/// Between SDP and the RTP parameters of the API, as mediasoup-client's
/// handlers do it on the browser side: an offer's m-section becomes the
/// parameters of a producer (what the remote will send) or the
/// capabilities of a consumer (what the remote can receive), and RTP
/// parameters become the lines of an answer.
public enum SdpMapping {
    /// The remote's DTLS parameters from an offer, and the `a=setup` of
    /// our answer: an `actpass` or `active` offerer is the DTLS client.
    public static func remoteDtls(_ offer: SessionDescription) throws(SFUError) -> (remote: DtlsParameters, answerSetup: String) {
        let sections = offer.media.filter(\.isActive)
        var fingerprints: [DtlsFingerprint] = []
        do {
            // Bundled sections repeat the same fingerprint: the first section's count.
            for m in sections where fingerprints.isEmpty { fingerprints = try m.fingerprints() }
            if fingerprints.isEmpty {
                fingerprints = try SdpMedia(kind: "", port: 0, proto: "", formats: [], attributes: offer.attributes).fingerprints()
            }
        } catch { throw .invalidArgument(error.description) }
        guard !fingerprints.isEmpty else { throw .invalidArgument("the offer has no a=fingerprint") }
        let setup = sections.lazy.compactMap { $0.attribute("setup") }.first ?? offer.attribute("setup") ?? "actpass"
        switch setup {
        case "actpass", "active": return (DtlsParameters(role: "client", fingerprints: fingerprints), "passive")
        case "passive": return (DtlsParameters(role: "server", fingerprints: fingerprints), "active")
        default: throw .invalidArgument("invalid a=setup:\(setup.prefix(20))")
        }
    }

    /// Checks what every offer must have: at least one m-section, unique
    /// mids, ICE credentials and rtcp-mux on the RTP sections we take.
    public static func check(_ offer: SessionDescription) throws(SFUError) {
        guard !offer.media.isEmpty else { throw .invalidArgument("the offer has no m-section") }
        var mids = Set<String>()
        for (i, m) in offer.media.enumerated() {
            guard let mid = m.mid, !mid.isEmpty else { throw .invalidArgument("m-section \(i) has no a=mid") }
            guard mid.count <= 32 else { throw .invalidArgument("m-section \(i): a=mid longer than 32 characters") }
            guard mids.insert(mid).inserted else { throw .invalidArgument("duplicate a=mid:\(mid)") }
            guard m.isActive else { continue }
            guard m.attribute("ice-ufrag") ?? offer.attribute("ice-ufrag") != nil,
                  m.attribute("ice-pwd") ?? offer.attribute("ice-pwd") != nil else {
                throw .invalidArgument("m-section \(mid) has no a=ice-ufrag/a=ice-pwd")
            }
            if m.kind == "audio" || m.kind == "video" {
                guard m.has("rtcp-mux") else { throw .invalidArgument("m-section \(mid) lacks a=rtcp-mux") }
            }
        }
    }

    /// Whether we take part in a section: RTP audio or video over DTLS-SRTP.
    static func isRtp(_ m: SdpMedia) -> Bool {
        (m.kind == "audio" || m.kind == "video") && m.isActive && m.proto.uppercased().hasSuffix("RTP/SAVPF")
    }

    static func mime(_ kind: String, _ name: String) -> String { "\(kind)/\(name)" }

    /// The producer parameters for a section the remote sends on: the
    /// codecs the router supports (in the offer's order, with their RTX),
    /// the header extensions it can receive, feedback both sides support,
    /// and the encodings (rids of `a=simulcast`, else SSRCs). Nil when the
    /// router supports none of the section's codecs.
    public static func producerParameters(_ m: SdpMedia, router caps: RtpCapabilities) throws(SFUError) -> RtpParameters? {
        guard let kind = MediaKind(rawValue: m.kind) else { return nil }
        let codecs: [SdpCodec], extmaps: [SdpExtmap]
        let ssrcs: [(ssrc: UInt32, name: String, value: String?)], groups: [(semantics: String, ssrcs: [UInt32])], simulcast: SdpSimulcast?
        do {
            codecs = try m.codecs()
            extmaps = try m.extmaps()
            ssrcs = try m.ssrcLines()
            groups = try m.ssrcGroups()
            simulcast = try m.simulcast()
            _ = try m.rids()
        } catch { throw .invalidArgument("m-section \(m.mid ?? "?"): \(error.message)") }
        let routerCodecs = (caps.codecs ?? []).filter { $0.kind == kind }
        var out: [RtpCodecParameters] = []
        for c in codecs where c.name.lowercased() != "rtx" {
            let cap = RtpCodecCapability(kind: kind, mimeType: mime(m.kind, c.name), clockRate: c.clockRate, channels: c.channels, parameters: c.parameters)
            guard let rc = routerCodecs.first(where: { Ortc.matchCodecs(cap, $0, strict: true) }) else { continue }
            let fb = c.feedback.filter { f in (rc.rtcpFeedback ?? []).contains { $0.type == f.type && ($0.parameter ?? "") == (f.parameter ?? "") } }
            out.append(RtpCodecParameters(mimeType: rc.mimeType, payloadType: c.payloadType, clockRate: c.clockRate, channels: c.channels, parameters: c.parameters, rtcpFeedback: fb))
        }
        guard !out.isEmpty else { return nil }
        for c in codecs where c.name.lowercased() == "rtx" {
            guard let apt = c.parameters["apt"]?.intValue, out.contains(where: { $0.payloadType == apt && !$0.mimeType.isRtxMime }) else { continue }
            out.append(RtpCodecParameters(mimeType: mime(m.kind, "rtx"), payloadType: c.payloadType, clockRate: c.clockRate, parameters: ["apt": .number(Double(apt))], rtcpFeedback: []))
        }
        let receivable = (caps.headerExtensions ?? []).filter { $0.kind == kind && ($0.direction ?? "sendrecv") != "sendonly" && $0.direction != "inactive" }
        let exts = extmaps.filter { e in receivable.contains { $0.uri == e.uri } }.map { RtpHeaderExtensionParameters(uri: $0.uri, id: $0.id) }
        var encodings: [RtpEncodingParameters] = []
        if let simulcast, simulcast.direction == "send" {
            encodings = simulcast.streams.map { RtpEncodingParameters(rid: $0.rid) }
        } else if let sim = groups.first(where: { $0.semantics == "SIM" }) {
            encodings = sim.ssrcs.map { s in
                let rtx = groups.first { $0.semantics == "FID" && $0.ssrcs.first == s && $0.ssrcs.count == 2 }?.ssrcs[1]
                return RtpEncodingParameters(ssrc: s, rtx: rtx.map(RtxParameters.init))
            }
        } else if let fid = groups.first(where: { $0.semantics == "FID" && $0.ssrcs.count == 2 }) {
            encodings = [RtpEncodingParameters(ssrc: fid.ssrcs[0], rtx: RtxParameters(ssrc: fid.ssrcs[1]))]
        } else if let first = ssrcs.first {
            encodings = [RtpEncodingParameters(ssrc: first.ssrc)]
        }
        if encodings.count > 4 { throw .invalidArgument("m-section \(m.mid ?? "?"): more than 4 simulcast encodings") }
        if !out.contains(where: { $0.mimeType.isRtxMime }) {
            encodings = encodings.map { var e = $0; e.rtx = nil; return e }
        }
        let cname = ssrcs.first { $0.name == "cname" }?.value
        return RtpParameters(mid: m.mid, codecs: out, headerExtensions: exts, encodings: encodings,
                             rtcp: RtcpParameters(cname: cname, reducedSize: m.has("rtcp-rsize"), mux: true))
    }

    /// What the remote of a section can receive, in its own payload types
    /// and extension ids (for `Transport.consume` with remote ids).
    public static func receiveCapabilities(_ m: SdpMedia) throws(SFUError) -> RtpCapabilities {
        guard let kind = MediaKind(rawValue: m.kind) else { return RtpCapabilities() }
        let codecs: [SdpCodec], extmaps: [SdpExtmap]
        do {
            codecs = try m.codecs()
            extmaps = try m.extmaps()
        } catch { throw .invalidArgument("m-section \(m.mid ?? "?"): \(error.message)") }
        return RtpCapabilities(
            codecs: codecs.map { RtpCodecCapability(kind: kind, mimeType: mime(m.kind, $0.name), preferredPayloadType: $0.payloadType, clockRate: $0.clockRate, channels: $0.channels, parameters: $0.parameters, rtcpFeedback: $0.feedback) },
            headerExtensions: extmaps.map { RtpHeaderExtension(kind: kind, uri: $0.uri, preferredId: $0.id) })
    }

    /// The rtpmap, fmtp, rtcp-fb and extmap lines of `params`.
    static func rtpAttributes(_ params: RtpParameters) -> [SdpAttribute] {
        var out: [SdpAttribute] = []
        for e in params.headerExtensions ?? [] { out.append(SdpAttribute("extmap", "\(e.id) \(e.uri)")) }
        for c in params.codecs {
            let name = c.mimeType.split(separator: "/", maxSplits: 1).last.map(String.init) ?? c.mimeType
            out.append(SdpAttribute("rtpmap", "\(c.payloadType) \(name)/\(c.clockRate)" + (c.channels.map { $0 > 1 ? "/\($0)" : "" } ?? "")))
            let params = (c.parameters ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.stringValue)" }
            if !params.isEmpty { out.append(SdpAttribute("fmtp", "\(c.payloadType) \(params.joined(separator: ";"))")) }
            for fb in c.rtcpFeedback ?? [] {
                let p = fb.parameter.map { $0.isEmpty ? "" : " \($0)" } ?? ""
                out.append(SdpAttribute("rtcp-fb", "\(c.payloadType) \(fb.type)\(p)"))
            }
        }
        return out
    }

    /// ICE, DTLS and candidate lines for every section of our answer.
    static func transportAttributes(_ ice: IceParameters, _ fingerprints: [DtlsFingerprint], _ candidates: [IceCandidate], setup: String) -> [SdpAttribute] {
        var out = [SdpAttribute("ice-ufrag", ice.usernameFragment), SdpAttribute("ice-pwd", ice.password)]
        for f in fingerprints where f.algorithm == "sha-256" { out.append(SdpAttribute("fingerprint", "\(f.algorithm) \(f.value)")) }
        out.append(SdpAttribute("setup", setup))
        out += candidates.map { SdpAttribute("candidate", candidateLine($0)) }
        out.append(SdpAttribute("end-of-candidates"))
        return out
    }

    static func candidateLine(_ c: IceCandidate) -> String {
        "\(c.foundation) 1 \(c.protocol) \(c.priority) \(c.address) \(c.port) typ \(c.type)" + (c.tcpType.map { " tcptype \($0)" } ?? "")
    }

    /// A rejected section of the answer (port 0), keeping the mid.
    static func rejected(_ m: SdpMedia) -> SdpMedia {
        SdpMedia(kind: m.kind, port: 0, proto: m.proto, formats: m.formats.isEmpty ? ["0"] : [m.formats[0]], connection: "IN IP4 0.0.0.0",
                 attributes: [SdpAttribute("mid", m.mid ?? ""), SdpAttribute("inactive")])
    }
}
