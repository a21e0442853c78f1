/// ORTC negotiation as mediasoup does it: validation that fills defaults,
/// router capabilities from media codecs, the producer -> router mapping,
/// consumable parameters and consumer parameters.
enum Ortc {
    static let dynamicPayloadTypes: [Int] = Array(100...127) + Array(96...99)

    // MARK: - Validation (TypeError on bad input; fills defaults in place)

    static func kind(ofMime mime: String) throws(SFUError) -> MediaKind {
        let parts = mime.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, !parts[1].isEmpty, let kind = MediaKind(rawValue: parts[0].lowercased()) else {
            throw .invalidArgument("invalid codec.mimeType '\(mime)'")
        }
        return kind
    }

    static func validateParameters(_ parameters: [String: ParameterValue]?) throws(SFUError) -> [String: ParameterValue] {
        let p = parameters ?? [:]
        if let apt = p["apt"], case .string = apt { throw .invalidArgument("invalid codec apt parameter") }
        return p
    }

    static func validateFeedback(_ fb: [RtcpFeedback]?) throws(SFUError) -> [RtcpFeedback] {
        var out: [RtcpFeedback] = []
        for f in fb ?? [] {
            guard !f.type.isEmpty else { throw .invalidArgument("missing fb.type") }
            out.append(RtcpFeedback(type: f.type, parameter: f.parameter ?? ""))
        }
        return out
    }

    static func validate(_ codec: RtpCodecCapability) throws(SFUError) -> RtpCodecCapability {
        var c = codec
        let kind = try kind(ofMime: c.mimeType)
        c.kind = kind
        guard c.clockRate > 0 else { throw .invalidArgument("missing codec.clockRate") }
        if kind == .audio { c.channels = c.channels ?? 1 } else { c.channels = nil }
        if let pt = c.preferredPayloadType, !(0...127).contains(pt) {
            throw .invalidArgument("invalid codec.preferredPayloadType \(pt)")
        }
        c.parameters = try validateParameters(c.parameters)
        c.rtcpFeedback = try validateFeedback(c.rtcpFeedback)
        return c
    }

    static func validate(_ ext: RtpHeaderExtension) throws(SFUError) -> RtpHeaderExtension {
        var e = ext
        guard !e.uri.isEmpty else { throw .invalidArgument("missing ext.uri") }
        guard (1...255).contains(e.preferredId) else { throw .invalidArgument("invalid ext.preferredId \(e.preferredId)") }
        e.preferredEncrypt = e.preferredEncrypt ?? false
        e.direction = e.direction ?? "sendrecv"
        guard ["sendrecv", "sendonly", "recvonly", "inactive"].contains(e.direction!) else {
            throw .invalidArgument("invalid ext.direction '\(e.direction!)'")
        }
        return e
    }

    static func validate(_ caps: RtpCapabilities) throws(SFUError) -> RtpCapabilities {
        var out = RtpCapabilities(codecs: [], headerExtensions: [])
        for c in caps.codecs ?? [] { out.codecs!.append(try validate(c)) }
        for e in caps.headerExtensions ?? [] { out.headerExtensions!.append(try validate(e)) }
        return out
    }

    static func validate(_ params: RtpParameters) throws(SFUError) -> RtpParameters {
        var p = params
        if let mid = p.mid, mid.isEmpty { throw .invalidArgument("empty rtpParameters.mid") }
        guard !p.codecs.isEmpty else { throw .invalidArgument("empty rtpParameters.codecs") }
        var seenPts = Set<Int>()
        for i in p.codecs.indices {
            var c = p.codecs[i]
            let kind = try kind(ofMime: c.mimeType)
            guard (0...127).contains(c.payloadType) else { throw .invalidArgument("invalid codec.payloadType \(c.payloadType)") }
            guard seenPts.insert(c.payloadType).inserted else { throw .invalidArgument("duplicated payloadType \(c.payloadType)") }
            guard c.clockRate > 0 else { throw .invalidArgument("missing codec.clockRate") }
            if kind == .audio { c.channels = c.channels ?? 1 } else { c.channels = nil }
            c.parameters = try validateParameters(c.parameters)
            c.rtcpFeedback = try validateFeedback(c.rtcpFeedback)
            p.codecs[i] = c
        }
        // RTX codecs must point at a media codec of this list.
        for c in p.codecs where c.mimeType.isRtxMime {
            guard let apt = c.parameters?["apt"]?.intValue else { throw .invalidArgument("missing apt in RTX codec \(c.payloadType)") }
            guard let target = p.codecs.first(where: { $0.payloadType == apt }) else {
                throw .invalidArgument("apt in RTX codec points to a non existing codec")
            }
            if target.mimeType.isRtxMime { throw .invalidArgument("apt in RTX codec points to a RTX codec") }
        }
        guard p.codecs.contains(where: { !$0.mimeType.isRtxMime }) else { throw .invalidArgument("no media codecs found") }
        var exts: [RtpHeaderExtensionParameters] = []
        for e in p.headerExtensions ?? [] {
            guard !e.uri.isEmpty else { throw .invalidArgument("missing ext.uri") }
            guard (1...255).contains(e.id) else { throw .invalidArgument("invalid ext.id \(e.id)") }
            exts.append(RtpHeaderExtensionParameters(uri: e.uri, id: e.id, encrypt: e.encrypt ?? false, parameters: e.parameters ?? [:]))
        }
        p.headerExtensions = exts
        var encodings = p.encodings ?? []
        for i in encodings.indices {
            encodings[i].dtx = encodings[i].dtx ?? false
            if let pt = encodings[i].codecPayloadType, !p.codecs.contains(where: { $0.payloadType == pt }) {
                throw .invalidArgument("unknown codecPayloadType \(pt)")
            }
        }
        p.encodings = encodings
        var rtcp = p.rtcp ?? RtcpParameters()
        rtcp.reducedSize = true
        p.rtcp = rtcp
        return p
    }

    // MARK: - Matching

    static func matchCodecs(_ a: RtpCodecCapability, _ b: RtpCodecCapability, strict: Bool) -> Bool {
        guard a.mimeType.sameMime(b.mimeType), a.clockRate == b.clockRate, a.channels == b.channels else { return false }
        switch a.mimeType.lowercased() {
        case "audio/multiopus":
            return a.parameters?["num_streams"] == b.parameters?["num_streams"]
                && a.parameters?["coupled_streams"] == b.parameters?["coupled_streams"]
        case "video/h264", "video/h264-svc":
            guard strict else { return true }
            let pa = a.parameters?["packetization-mode"]?.intValue ?? 0
            let pb = b.parameters?["packetization-mode"]?.intValue ?? 0
            guard pa == pb else { return false }
            return H264ProfileLevelId.sameProfile(a.parameters, b.parameters)
        case "video/vp9":
            guard strict else { return true }
            return (a.parameters?["profile-id"]?.intValue ?? 0) == (b.parameters?["profile-id"]?.intValue ?? 0)
        default:
            return true
        }
    }

    static func capability(of c: RtpCodecParameters, kind: MediaKind) -> RtpCodecCapability {
        RtpCodecCapability(kind: kind, mimeType: c.mimeType, preferredPayloadType: c.payloadType, clockRate: c.clockRate, channels: c.channels, parameters: c.parameters, rtcpFeedback: c.rtcpFeedback)
    }

    // MARK: - Router capabilities

    static func generateRouterRtpCapabilities(_ mediaCodecs: [RtpCodecCapability]) throws(SFUError) -> RtpCapabilities {
        var pool = dynamicPayloadTypes
        var codecs: [RtpCodecCapability] = []
        for raw in mediaCodecs {
            let media = try validate(raw)
            guard let supported = SupportedRtpCapabilities.codecs.first(where: { matchCodecs(media, $0, strict: false) }) else {
                throw .unsupported("media codec not supported [mimeType:\(media.mimeType)]")
            }
            var codec = supported
            if let pt = media.preferredPayloadType {
                codec.preferredPayloadType = pt
                pool.removeAll { $0 == pt }
            } else if supported.preferredPayloadType == nil {
                guard !pool.isEmpty else { throw .failure("cannot allocate more dynamic codec payload types") }
                codec.preferredPayloadType = pool.removeFirst()
            }
            if codecs.contains(where: { $0.preferredPayloadType == codec.preferredPayloadType }) {
                throw .invalidArgument("duplicated codec.preferredPayloadType \(codec.preferredPayloadType!)")
            }
            codec.parameters = (supported.parameters ?? [:]).merging(media.parameters ?? [:]) { _, app in app }
            codecs.append(codec)
            if codec.kind == .video {
                guard !pool.isEmpty else { throw .failure("cannot allocate more dynamic codec payload types") }
                codecs.append(RtpCodecCapability(kind: .video, mimeType: "video/rtx", preferredPayloadType: pool.removeFirst(), clockRate: codec.clockRate, parameters: ["apt": .number(Double(codec.preferredPayloadType!))], rtcpFeedback: []))
            }
        }
        return RtpCapabilities(codecs: codecs, headerExtensions: SupportedRtpCapabilities.headerExtensions)
    }

    // MARK: - Producer side

    struct CodecMapping: Sendable, Hashable {
        var payloadType: Int
        var mappedPayloadType: Int
    }
    struct EncodingMapping: Sendable, Hashable {
        var ssrc: UInt32?
        var rid: String?
        var scalabilityMode: String?
        var mappedSsrc: UInt32
    }
    struct RtpMapping: Sendable, Hashable {
        var codecs: [CodecMapping]
        var encodings: [EncodingMapping]
    }

    static func randomSsrc() -> UInt32 { UInt32.random(in: 100_000_000...999_999_999) }

    static func producerMapping(_ params: inout RtpParameters, kind: MediaKind, router caps: RtpCapabilities) throws(SFUError) -> RtpMapping {
        var mapping = RtpMapping(codecs: [], encodings: [])
        var matched: [(Int, RtpCodecCapability)] = []
        let routerCodecs = caps.codecs ?? []
        for i in params.codecs.indices where !params.codecs[i].mimeType.isRtxMime {
            let codec = params.codecs[i]
            let cap = capability(of: codec, kind: kind)
            guard let routerCodec = routerCodecs.first(where: { matchCodecs(cap, $0, strict: true) }) else {
                throw .unsupported("unsupported codec [mimeType:\(codec.mimeType), payloadType:\(codec.payloadType)]")
            }
            // H264: the producer's profile-level-id becomes the negotiated answer.
            if codec.mimeType.lowercased().hasPrefix("video/h264") {
                if case .some(let answer) = H264ProfileLevelId.answer(local: routerCodec.parameters, remote: codec.parameters) {
                    if let answer { params.codecs[i].parameters?["profile-level-id"] = .string(answer) }
                }
            }
            matched.append((codec.payloadType, routerCodec))
        }
        for codec in params.codecs where codec.mimeType.isRtxMime {
            let apt = codec.parameters?["apt"]?.intValue ?? -1
            guard let media = matched.first(where: { $0.0 == apt }) else {
                throw .invalidArgument("missing media codec found for RTX PT \(codec.payloadType)")
            }
            guard let rtx = routerCodecs.first(where: { $0.mimeType.isRtxMime && $0.parameters?["apt"]?.intValue == media.1.preferredPayloadType }) else {
                throw .unsupported("no RTX codec for capability codec PT \(media.1.preferredPayloadType ?? -1)")
            }
            matched.append((codec.payloadType, rtx))
        }
        for (pt, routerCodec) in matched {
            mapping.codecs.append(CodecMapping(payloadType: pt, mappedPayloadType: routerCodec.preferredPayloadType!))
        }
        var mappedSsrc = randomSsrc()
        for e in params.encodings ?? [] {
            mapping.encodings.append(EncodingMapping(ssrc: e.ssrc, rid: e.rid, scalabilityMode: e.scalabilityMode, mappedSsrc: mappedSsrc))
            mappedSsrc &+= 1
        }
        return mapping
    }

    static func consumableParameters(kind: MediaKind, params: RtpParameters, router caps: RtpCapabilities, mapping: RtpMapping) -> RtpParameters {
        var out = RtpParameters(codecs: [], headerExtensions: [], encodings: [], rtcp: nil)
        let routerCodecs = caps.codecs ?? []
        for codec in params.codecs where !codec.mimeType.isRtxMime {
            guard let mapped = mapping.codecs.first(where: { $0.payloadType == codec.payloadType })?.mappedPayloadType,
                  let rc = routerCodecs.first(where: { $0.preferredPayloadType == mapped }) else { continue }
            out.codecs.append(RtpCodecParameters(mimeType: rc.mimeType, payloadType: mapped, clockRate: rc.clockRate, channels: rc.channels, parameters: codec.parameters ?? [:], rtcpFeedback: rc.rtcpFeedback ?? []))
            if let rtx = routerCodecs.first(where: { $0.mimeType.isRtxMime && $0.parameters?["apt"]?.intValue == mapped }) {
                out.codecs.append(RtpCodecParameters(mimeType: rtx.mimeType, payloadType: rtx.preferredPayloadType!, clockRate: rtx.clockRate, channels: rtx.channels, parameters: rtx.parameters ?? [:], rtcpFeedback: rtx.rtcpFeedback ?? []))
            }
        }
        for ext in caps.headerExtensions ?? [] where ext.kind == kind && (ext.direction == "sendrecv" || ext.direction == "sendonly") {
            out.headerExtensions!.append(RtpHeaderExtensionParameters(uri: ext.uri, id: ext.preferredId, encrypt: ext.preferredEncrypt ?? false, parameters: [:]))
        }
        for (i, e) in (params.encodings ?? []).enumerated() {
            var c = e
            c.rid = nil
            c.rtx = nil
            c.codecPayloadType = nil
            c.ssrc = mapping.encodings[i].mappedSsrc
            out.encodings!.append(c)
        }
        out.rtcp = RtcpParameters(cname: params.rtcp?.cname, reducedSize: true)
        return out
    }

    // MARK: - Consumer side

    static func canConsume(_ consumable: RtpParameters, caps: RtpCapabilities) throws(SFUError) -> Bool {
        let remote = try validate(caps)
        var matching: [RtpCodecParameters] = []
        for c in consumable.codecs {
            let cap = capability(of: c, kind: try kind(ofMime: c.mimeType))
            if (remote.codecs ?? []).contains(where: { matchCodecs($0, cap, strict: true) }) { matching.append(c) }
        }
        guard let first = matching.first else { return false }
        return !first.mimeType.isRtxMime
    }

    static func consumerParameters(_ consumable: RtpParameters, caps: RtpCapabilities, enableRtx: Bool, pipe: Bool) throws(SFUError) -> RtpParameters {
        let remote = try validate(caps)
        var out = RtpParameters(codecs: [], headerExtensions: [], encodings: [], rtcp: consumable.rtcp)
        for c in consumable.codecs {
            if !enableRtx && c.mimeType.isRtxMime { continue }
            let cap = capability(of: c, kind: try kind(ofMime: c.mimeType))
            guard let rc = (remote.codecs ?? []).first(where: { matchCodecs($0, cap, strict: true) }) else { continue }
            var codec = c
            codec.rtcpFeedback = (rc.rtcpFeedback ?? []).filter { enableRtx || !($0.type == "nack" && ($0.parameter ?? "").isEmpty) }
            out.codecs.append(codec)
        }
        // Drop RTX codecs whose media codec did not survive.
        out.codecs = out.codecs.filter { c in
            guard c.mimeType.isRtxMime else { return true }
            let apt = c.parameters?["apt"]?.intValue
            return out.codecs.contains { !$0.mimeType.isRtxMime && $0.payloadType == apt }
        }
        let rtxSupported = out.codecs.contains { $0.mimeType.isRtxMime }
        guard let first = out.codecs.first, !first.mimeType.isRtxMime else { throw .unsupported("no compatible media codecs") }
        out.headerExtensions = (consumable.headerExtensions ?? []).filter { ext in
            (remote.headerExtensions ?? []).contains { $0.preferredId == ext.id && $0.uri == ext.uri }
        }
        let uris = Set(out.headerExtensions!.map(\.uri))
        for i in out.codecs.indices {
            out.codecs[i].rtcpFeedback = out.codecs[i].rtcpFeedback?.filter { fb in
                if uris.contains(SupportedRtpCapabilities.Uri.transportWideCc) { return fb.type != "goog-remb" }
                if uris.contains(SupportedRtpCapabilities.Uri.absSendTime) { return fb.type != "transport-cc" }
                return fb.type != "goog-remb" && fb.type != "transport-cc"
            }
        }
        let encodings = consumable.encodings ?? []
        if !pipe {
            var e = RtpEncodingParameters(ssrc: randomSsrc())
            if rtxSupported { e.rtx = RtxParameters(ssrc: e.ssrc! &+ 1) }
            if let mode = encodings.first(where: { $0.scalabilityMode != nil })?.scalabilityMode {
                e.scalabilityMode = mode
            }
            if encodings.count > 1 {
                let temporal = temporalLayers(encodings.first?.scalabilityMode)
                e.scalabilityMode = "L\(encodings.count)T\(temporal)"
            }
            let maxBitrate = encodings.compactMap(\.maxBitrate).max() ?? 0
            if maxBitrate > 0 { e.maxBitrate = maxBitrate }
            out.encodings = [e]
        } else {
            let base = randomSsrc(), rtxBase = randomSsrc()
            out.encodings = encodings.enumerated().map { i, enc in
                var e = enc
                e.ssrc = base &+ UInt32(i)
                e.rtx = rtxSupported ? RtxParameters(ssrc: rtxBase &+ UInt32(i)) : nil
                return e
            }
        }
        return out
    }

    /// Parameters of a consumer on a pipe transport: every consumable codec
    /// and encoding, feedback limited to what crosses a pipe, no MID,
    /// transport-wide or abs-send-time extensions (the far router adds its own).
    static func pipeConsumerParameters(_ consumable: RtpParameters, enableRtx: Bool) -> RtpParameters {
        var out = RtpParameters(codecs: [], headerExtensions: [], encodings: [], rtcp: consumable.rtcp)
        for c in consumable.codecs where enableRtx || !c.mimeType.isRtxMime {
            var codec = c
            codec.rtcpFeedback = (c.rtcpFeedback ?? []).filter { fb in
                (fb.type == "nack" && fb.parameter == "pli") || (fb.type == "ccm" && fb.parameter == "fir")
                    || (enableRtx && fb.type == "nack" && (fb.parameter ?? "").isEmpty)
            }
            out.codecs.append(codec)
        }
        let dropped: Set<String> = [SupportedRtpCapabilities.Uri.mid, SupportedRtpCapabilities.Uri.absSendTime, SupportedRtpCapabilities.Uri.transportWideCc]
        out.headerExtensions = (consumable.headerExtensions ?? []).filter { !dropped.contains($0.uri) }
        let base = randomSsrc(), rtxBase = randomSsrc()
        out.encodings = (consumable.encodings ?? []).enumerated().map { i, enc in
            var e = enc
            e.ssrc = base &+ UInt32(i)
            e.rtx = enableRtx ? RtxParameters(ssrc: rtxBase &+ UInt32(i)) : nil
            return e
        }
        return out
    }

    static func temporalLayers(_ mode: String?) -> Int {
        guard let mode, let t = mode.firstIndex(of: "T") else { return 1 }
        let digits = mode[mode.index(after: t)...].prefix { $0.isNumber }
        return Int(digits) ?? 1
    }
}
