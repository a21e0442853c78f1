/// Consumers whose wire numbers are the remote's: an SDP offerer (a WHEP
/// player) names its own payload types and extension ids, and the answer
/// must send with them, whereas mediasoup-client's capabilities already
/// carry the router's numbers. The forwarder maps router to wire numbers
/// per consumer, so only the parameters change.
extension Ortc {
    /// Wire payload type / extension id -> router's, for one consumer.
    struct WireIds: Sendable, Hashable {
        var payloadTypes: [Int: Int] = [:]
        var extensionIds: [Int: Int] = [:]

        func routerPayloadType(_ wire: Int) -> Int { payloadTypes[wire] ?? wire }
        func routerExtensionId(_ wire: Int) -> Int { extensionIds[wire] ?? wire }
    }

    /// `caps` with each header extension's id replaced by the consumable's
    /// id for the same URI, so that `consumerParameters` matches by URI.
    static func alignExtensionIds(_ caps: RtpCapabilities, to consumable: RtpParameters) -> RtpCapabilities {
        var out = caps
        out.headerExtensions = (caps.headerExtensions ?? []).compactMap { ext in
            guard let match = consumable.headerExtensions?.first(where: { $0.uri == ext.uri }) else { return nil }
            var e = ext
            e.preferredId = match.id
            return e
        }
        return out
    }

    /// Rewrites consumer parameters computed in the router's numbers into
    /// the remote's (`caps` preferred payload types and ids); RTX codecs the
    /// remote has no match for are dropped. Returns the mapping back.
    static func adoptRemoteIds(_ params: inout RtpParameters, caps: RtpCapabilities) throws(SFUError) -> WireIds {
        var ids = WireIds()
        let remote = caps.codecs ?? []
        var wireMedia: [Int: Int] = [:]
        var codecs: [RtpCodecParameters] = []
        for c in params.codecs where !c.mimeType.isRtxMime {
            let cap = capability(of: c, kind: try kind(ofMime: c.mimeType))
            guard let rc = remote.first(where: { !$0.mimeType.isRtxMime && matchCodecs($0, cap, strict: true) }),
                  let pt = rc.preferredPayloadType else { continue }
            guard ids.payloadTypes[pt] == nil else { continue }
            wireMedia[c.payloadType] = pt
            ids.payloadTypes[pt] = c.payloadType
            var codec = c
            codec.payloadType = pt
            codecs.append(codec)
        }
        for c in params.codecs where c.mimeType.isRtxMime {
            guard let apt = c.parameters?["apt"]?.intValue, let wireApt = wireMedia[apt],
                  let rc = remote.first(where: { $0.mimeType.isRtxMime && $0.parameters?["apt"]?.intValue == wireApt }),
                  let pt = rc.preferredPayloadType, ids.payloadTypes[pt] == nil else { continue }
            ids.payloadTypes[pt] = c.payloadType
            var codec = c
            codec.payloadType = pt
            codec.parameters?["apt"] = .number(Double(wireApt))
            codecs.append(codec)
        }
        guard let first = codecs.first, !first.mimeType.isRtxMime else { throw .unsupported("no compatible media codecs") }
        // Keep the router's order (first codec = the one sent).
        params.codecs = params.codecs.compactMap { c in
            codecs.first { ids.payloadTypes[$0.payloadType] == c.payloadType }
        }
        if !params.codecs.contains(where: { $0.mimeType.isRtxMime }) {
            params.encodings = params.encodings?.map { var e = $0; e.rtx = nil; return e }
        }
        let remoteExts = caps.headerExtensions ?? []
        params.headerExtensions = (params.headerExtensions ?? []).compactMap { ext in
            guard let r = remoteExts.first(where: { $0.uri == ext.uri }) else { return nil }
            ids.extensionIds[r.preferredId] = ext.id
            var e = ext
            e.id = r.preferredId
            return e
        }
        return ids
    }
}
