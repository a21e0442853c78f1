/// Typed views of the RTP attributes of an m-section (rtpmap, fmtp,
/// rtcp-fb, extmap, ssrc, ssrc-group, rid, simulcast) and of its ICE and
/// DTLS attributes. Each throws `SdpError` on a malformed value.

/// A codec of an m-section: its rtpmap with fmtp and rtcp-fb folded in.
public struct SdpCodec: Sendable, Hashable {
    public var payloadType: Int
    /// e.g. `VP8`, `opus`, `rtx`.
    public var name: String
    public var clockRate: Int
    public var channels: Int?
    public var parameters: [String: ParameterValue] = [:]
    public var feedback: [RtcpFeedback] = []
}

public struct SdpExtmap: Sendable, Hashable {
    public var id: Int
    public var direction: String?
    public var uri: String
}

public struct SdpRid: Sendable, Hashable {
    public var id: String
    /// `send` or `recv`.
    public var direction: String
}

/// `a=simulcast`: the rids of one direction in order; paused (`~`) ones are marked.
public struct SdpSimulcast: Sendable, Hashable {
    public var direction: String
    public var streams: [(rid: String, paused: Bool)]

    public static func == (a: Self, b: Self) -> Bool {
        a.direction == b.direction && a.streams.map(\.rid) == b.streams.map(\.rid) && a.streams.map(\.paused) == b.streams.map(\.paused)
    }
    public func hash(into h: inout Hasher) {
        h.combine(direction)
        for s in streams { h.combine(s.rid); h.combine(s.paused) }
    }
}

extension SdpMedia {
    /// The codecs in m-line order; payload types without an rtpmap get
    /// their static RFC 3551 meaning only for PCMU/PCMA (0, 8), others fail.
    public func codecs() throws(SdpError) -> [SdpCodec] {
        var byPt: [Int: SdpCodec] = [:]
        for value in attributes(named: "rtpmap") {
            let f = value.split(separator: " ", maxSplits: 1)
            guard f.count == 2, let pt = Int(f[0]), (0...127).contains(pt) else { throw SdpError(line: 0, "malformed a=rtpmap:\(value.prefix(40))") }
            let enc = f[1].split(separator: "/")
            guard enc.count >= 2, let clock = Int(enc[1]), clock > 0, clock <= 1_000_000 else { throw SdpError(line: 0, "malformed a=rtpmap:\(value.prefix(40))") }
            var channels: Int? = nil
            if enc.count >= 3 {
                guard let c = Int(enc[2]), (1...255).contains(c) else { throw SdpError(line: 0, "malformed channel count in a=rtpmap:\(value.prefix(40))") }
                channels = c
            }
            guard byPt[pt] == nil else { throw SdpError(line: 0, "a second a=rtpmap for payload type \(pt)") }
            byPt[pt] = SdpCodec(payloadType: pt, name: String(enc[0]), clockRate: clock, channels: channels)
        }
        for value in attributes(named: "fmtp") {
            let f = value.split(separator: " ", maxSplits: 1)
            guard f.count >= 1, let pt = Int(f[0]) else { throw SdpError(line: 0, "malformed a=fmtp:\(value.prefix(40))") }
            guard byPt[pt] != nil else { continue }
            if f.count == 2 { byPt[pt]!.parameters.merge(Self.fmtpParameters(String(f[1]))) { $1 } }
        }
        for value in attributes(named: "rtcp-fb") {
            let f = value.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 2 else { throw SdpError(line: 0, "malformed a=rtcp-fb:\(value.prefix(40))") }
            let fb = RtcpFeedback(type: String(f[1]), parameter: f.count > 2 ? f[2...].joined(separator: " ") : nil)
            if f[0] == "*" {
                for pt in byPt.keys { byPt[pt]!.feedback.append(fb) }
            } else if let pt = Int(f[0]), byPt[pt] != nil {
                byPt[pt]!.feedback.append(fb)
            }
        }
        var out: [SdpCodec] = []
        for format in formats {
            guard let pt = Int(format), (0...127).contains(pt) else { throw SdpError(line: 0, "invalid payload type \"\(format.prefix(12))\" on the m= line") }
            if let c = byPt[pt] { out.append(c) }
            else if pt == 0 { out.append(SdpCodec(payloadType: 0, name: "PCMU", clockRate: 8000, channels: 1)) }
            else if pt == 8 { out.append(SdpCodec(payloadType: 8, name: "PCMA", clockRate: 8000, channels: 1)) }
            else { throw SdpError(line: 0, "payload type \(pt) has no a=rtpmap") }
        }
        return out
    }

    /// `key=value;key=value`: numbers become numbers (as sdp-transform
    /// parses them), anything else stays a string.
    static func fmtpParameters(_ text: String) -> [String: ParameterValue] {
        var out: [String: ParameterValue] = [:]
        for pair in text.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).trimmingSdpSpaces
            guard !key.isEmpty else { continue }
            let value = kv.count == 2 ? String(kv[1]).trimmingSdpSpaces : ""
            if let n = Double(value), value.allSatisfy({ $0.isNumber || $0 == "." }), !value.isEmpty {
                out[key] = .number(n)
            } else {
                out[key] = .string(value)
            }
        }
        return out
    }

    public func extmaps() throws(SdpError) -> [SdpExtmap] {
        var out: [SdpExtmap] = []
        for value in attributes(named: "extmap") {
            let f = value.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 2 else { throw SdpError(line: 0, "malformed a=extmap:\(value.prefix(40))") }
            let idDir = f[0].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let id = Int(idDir[0]), (1...255).contains(id) else { throw SdpError(line: 0, "invalid extmap id in a=extmap:\(value.prefix(40))") }
            guard !out.contains(where: { $0.id == id }) else { throw SdpError(line: 0, "extmap id \(id) used twice") }
            out.append(SdpExtmap(id: id, direction: idDir.count == 2 ? String(idDir[1]) : nil, uri: String(f[1])))
        }
        return out
    }

    /// `a=ssrc:<ssrc> <attribute>[:<value>]`, in order.
    public func ssrcLines() throws(SdpError) -> [(ssrc: UInt32, name: String, value: String?)] {
        var out: [(UInt32, String, String?)] = []
        for value in attributes(named: "ssrc") {
            let f = value.split(separator: " ", maxSplits: 1)
            guard f.count == 2, let ssrc = UInt32(f[0]) else { throw SdpError(line: 0, "malformed a=ssrc:\(value.prefix(40))") }
            let nv = f[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            out.append((ssrc, String(nv[0]), nv.count == 2 ? String(nv[1]) : nil))
        }
        return out
    }

    /// `a=ssrc-group:<semantics> <ssrc>...`.
    public func ssrcGroups() throws(SdpError) -> [(semantics: String, ssrcs: [UInt32])] {
        var out: [(String, [UInt32])] = []
        for value in attributes(named: "ssrc-group") {
            let f = value.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 2 else { throw SdpError(line: 0, "malformed a=ssrc-group:\(value.prefix(40))") }
            var ssrcs: [UInt32] = []
            for s in f.dropFirst() {
                guard let v = UInt32(s) else { throw SdpError(line: 0, "invalid SSRC in a=ssrc-group:\(value.prefix(40))") }
                ssrcs.append(v)
            }
            out.append((String(f[0]), ssrcs))
        }
        return out
    }

    public func rids() throws(SdpError) -> [SdpRid] {
        var out: [SdpRid] = []
        for value in attributes(named: "rid") {
            let f = value.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 2, f[1] == "send" || f[1] == "recv", f[0].count <= 32,
                  f[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw SdpError(line: 0, "malformed a=rid:\(value.prefix(40))")
            }
            guard !out.contains(where: { $0.id == f[0] }) else { throw SdpError(line: 0, "rid \"\(f[0])\" declared twice") }
            out.append(SdpRid(id: String(f[0]), direction: String(f[1])))
        }
        return out
    }

    /// `a=simulcast:send a;b;~c` (RFC 8853); alternatives (`a,b`) keep their first rid.
    public func simulcast() throws(SdpError) -> SdpSimulcast? {
        guard let value = attribute("simulcast") else { return nil }
        let f = value.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 2, f[0] == "send" || f[0] == "recv" else { throw SdpError(line: 0, "malformed a=simulcast:\(value.prefix(40))") }
        var streams: [(String, Bool)] = []
        for stream in f[1].split(separator: ";") {
            guard var first = stream.split(separator: ",").first else { continue }
            let paused = first.hasPrefix("~")
            if paused { first = first.dropFirst() }
            guard !first.isEmpty else { throw SdpError(line: 0, "empty rid in a=simulcast") }
            streams.append((String(first), paused))
        }
        guard !streams.isEmpty else { throw SdpError(line: 0, "a=simulcast names no rid") }
        return SdpSimulcast(direction: String(f[0]), streams: streams)
    }

    /// `a=fingerprint:<algorithm> <value>` lines.
    public func fingerprints() throws(SdpError) -> [DtlsFingerprint] {
        try attributes(named: "fingerprint").map { (v: String) throws(SdpError) -> DtlsFingerprint in
            let f = v.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count == 2 else { throw SdpError(line: 0, "malformed a=fingerprint:\(v.prefix(40))") }
            return DtlsFingerprint(algorithm: f[0].lowercased(), value: f[1].uppercased())
        }
    }
}

extension String {
    var trimmingSdpSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
