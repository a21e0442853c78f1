/// SDP (RFC 8866) as WebRTC endpoints write it: a strict parser and a
/// writer of our own. Parsing keeps every line's meaning (attributes stay
/// name/value pairs in order) and checks what the negotiation relies on;
/// the typed views of attributes live in `SdpMedia+Rtp.swift`.
///
/// Everything is bounded: a description arrives from the network (WHIP,
/// WHEP), so size, line count, line length and m-section count are capped.

/// A parse error: the 1-based line and what is wrong with it.
public struct SdpError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 0 when the error concerns the whole description.
    public var line: Int
    public var message: String

    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "SDP line \(line): \(message)" : "SDP: \(message)" }
}

/// One `a=` line: `a=name` (a flag) or `a=name:value`.
public struct SdpAttribute: Sendable, Hashable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// `o=` line.
public struct SdpOrigin: Sendable, Hashable {
    public var username = "-"
    public var sessionId = "0"
    public var sessionVersion = "0"
    public var address = "127.0.0.1"

    public init(username: String = "-", sessionId: String = "0", sessionVersion: String = "0", address: String = "127.0.0.1") {
        self.username = username
        self.sessionId = sessionId
        self.sessionVersion = sessionVersion
        self.address = address
    }
}

/// One m-section: its `m=` line and what follows up to the next one.
public struct SdpMedia: Sendable, Hashable {
    /// `audio`, `video`, `application`, ...
    public var kind: String
    /// 0 rejects the section (RFC 3264).
    public var port: Int
    public var proto: String
    /// Payload types for RTP, `webrtc-datachannel` for SCTP.
    public var formats: [String]
    /// `c=` (the address part, e.g. `IN IP4 0.0.0.0`).
    public var connection: String?
    public var bandwidths: [String] = []
    public var attributes: [SdpAttribute] = []

    public init(kind: String, port: Int, proto: String, formats: [String], connection: String? = nil, attributes: [SdpAttribute] = []) {
        self.kind = kind
        self.port = port
        self.proto = proto
        self.formats = formats
        self.connection = connection
        self.attributes = attributes
    }
}

/// A whole session description.
public struct SessionDescription: Sendable, Hashable {
    public var origin = SdpOrigin()
    public var sessionName = "-"
    public var connection: String?
    public var bandwidths: [String] = []
    /// `t=`; WebRTC always sends `0 0`.
    public var timing = "0 0"
    public var attributes: [SdpAttribute] = []
    public var media: [SdpMedia] = []

    public init(origin: SdpOrigin = SdpOrigin(), attributes: [SdpAttribute] = [], media: [SdpMedia] = []) {
        self.origin = origin
        self.attributes = attributes
        self.media = media
    }

    /// What the parser accepts.
    public struct Limits: Sendable {
        public var maxBytes = 64 * 1024
        public var maxLines = 4096
        public var maxLineLength = 4096
        public var maxMedia = 32
        public init() {}
    }

    /// Parses `text` (CRLF or LF line ends). Throws on anything that is not
    /// well-formed SDP, naming the line.
    public init(parsing text: String, limits: Limits = Limits()) throws(SdpError) {
        guard text.utf8.count <= limits.maxBytes else { throw SdpError(line: 0, "description longer than \(limits.maxBytes) bytes") }
        var lineNumber = 0
        var sawVersion = false, sawOrigin = false, sawName = false, sawTiming = false
        var current: SdpMedia? = nil
        // "\r\n" is one Character in Swift: both line ends are separators.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            guard lineNumber <= limits.maxLines else { throw SdpError(line: lineNumber, "more than \(limits.maxLines) lines") }
            var line = Substring(raw)
            if line.last == "\r" { line = line.dropLast() }
            if line.isEmpty { continue } // the trailing line end, or a stray blank line
            guard line.utf8.count <= limits.maxLineLength else { throw SdpError(line: lineNumber, "line longer than \(limits.maxLineLength) bytes") }
            // No control characters but tab: a stray CR or NUL would not
            // survive writing the description back out.
            guard !line.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                throw SdpError(line: lineNumber, "control character in the line")
            }
            let bytes = line.utf8
            guard bytes.count >= 2, bytes[bytes.index(after: bytes.startIndex)] == UInt8(ascii: "=") else {
                throw SdpError(line: lineNumber, "expected <type>=<value>")
            }
            let type = line.first!
            let value = String(line.dropFirst(2))
            if !sawVersion {
                guard type == "v", value == "0" else { throw SdpError(line: lineNumber, "a description starts with v=0") }
                sawVersion = true
                continue
            }
            switch type {
            case "v":
                throw SdpError(line: lineNumber, "a second v= line")
            case "o":
                guard current == nil, !sawOrigin else { throw SdpError(line: lineNumber, "o= out of place") }
                let f = value.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count == 6 else { throw SdpError(line: lineNumber, "o= needs 6 fields") }
                origin = SdpOrigin(username: String(f[0]), sessionId: String(f[1]), sessionVersion: String(f[2]), address: String(f[5]))
                sawOrigin = true
            case "s":
                guard current == nil, !sawName else { throw SdpError(line: lineNumber, "s= out of place") }
                sessionName = value
                sawName = true
            case "t":
                guard current == nil else { throw SdpError(line: lineNumber, "t= inside a media section") }
                timing = value
                sawTiming = true
            case "c":
                if current != nil { current!.connection = value } else { connection = value }
            case "b":
                if current != nil { current!.bandwidths.append(value) } else { bandwidths.append(value) }
            case "a":
                let attribute = try Self.parseAttribute(value, line: lineNumber)
                if current != nil { current!.attributes.append(attribute) } else { attributes.append(attribute) }
            case "m":
                guard sawOrigin, sawName, sawTiming else { throw SdpError(line: lineNumber, "m= before the o=, s= and t= lines") }
                if let m = current { media.append(m) }
                guard media.count < limits.maxMedia else { throw SdpError(line: lineNumber, "more than \(limits.maxMedia) m-sections") }
                current = try Self.parseMediaLine(value, line: lineNumber)
            case "i", "u", "e", "p", "r", "z", "k":
                continue // informational lines: accepted, not kept
            default:
                throw SdpError(line: lineNumber, "unknown line type \"\(type)\"")
            }
        }
        if let m = current { media.append(m) }
        guard sawVersion else { throw SdpError(line: 0, "empty description") }
        guard sawOrigin else { throw SdpError(line: 0, "missing o= line") }
        guard sawName else { throw SdpError(line: 0, "missing s= line") }
        guard sawTiming else { throw SdpError(line: 0, "missing t= line") }
    }

    static func parseAttribute(_ value: String, line: Int) throws(SdpError) -> SdpAttribute {
        guard !value.isEmpty else { throw SdpError(line: line, "empty attribute") }
        if let colon = value.firstIndex(of: ":") {
            let name = String(value[..<colon])
            guard !name.isEmpty, !name.contains(" ") else { throw SdpError(line: line, "malformed attribute name") }
            return SdpAttribute(name, String(value[value.index(after: colon)...]))
        }
        guard !value.contains(" ") else { throw SdpError(line: line, "malformed attribute \"\(value.prefix(40))\"") }
        return SdpAttribute(value)
    }

    static func parseMediaLine(_ value: String, line: Int) throws(SdpError) -> SdpMedia {
        let f = value.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 4 else { throw SdpError(line: line, "m= needs media, port, protocol and at least one format") }
        let portField = f[1].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let port = Int(portField[0]), (0...65535).contains(port) else { throw SdpError(line: line, "invalid port \"\(f[1].prefix(12))\"") }
        return SdpMedia(kind: String(f[0]), port: port, proto: String(f[2]), formats: f[3...].map(String.init))
    }

    /// The description as text, CRLF line ends.
    public var text: String {
        var out = "v=0\r\n"
        out += "o=\(origin.username) \(origin.sessionId) \(origin.sessionVersion) IN IP4 \(origin.address)\r\n"
        out += "s=\(sessionName)\r\n"
        if let connection { out += "c=\(connection)\r\n" }
        for b in bandwidths { out += "b=\(b)\r\n" }
        out += "t=\(timing)\r\n"
        for a in attributes { out += a.line }
        for m in media {
            out += "m=\(m.kind) \(m.port) \(m.proto) \(m.formats.joined(separator: " "))\r\n"
            if let c = m.connection { out += "c=\(c)\r\n" }
            for b in m.bandwidths { out += "b=\(b)\r\n" }
            for a in m.attributes { out += a.line }
        }
        return out
    }
}

extension SdpAttribute {
    var line: String { value.map { "a=\(name):\($0)\r\n" } ?? "a=\(name)\r\n" }
}

extension SessionDescription {
    /// The first value of a session-level attribute.
    public func attribute(_ name: String) -> String? {
        attributes.first { $0.name == name }?.value
    }

    /// The mids of `a=group:BUNDLE`, empty when there is none.
    public var bundleMids: [String] {
        for a in attributes where a.name == "group" {
            let f = (a.value ?? "").split(separator: " ")
            if f.first == "BUNDLE" { return f.dropFirst().map(String.init) }
        }
        return []
    }
}

extension SdpMedia {
    /// The first value of an attribute (`""` for a flag).
    public func attribute(_ name: String) -> String? {
        attributes.first { $0.name == name }.map { $0.value ?? "" }
    }

    /// Every value of an attribute, in order.
    public func attributes(named name: String) -> [String] {
        attributes.filter { $0.name == name }.map { $0.value ?? "" }
    }

    public func has(_ name: String) -> Bool { attributes.contains { $0.name == name } }

    public var mid: String? { attribute("mid") }

    /// Not rejected: a non-zero port, or port 0 with `a=bundle-only`
    /// (a section that exists only inside the BUNDLE group, RFC 8843).
    public var isActive: Bool { port != 0 || has("bundle-only") }

    /// `sendrecv` unless the section says otherwise.
    public var direction: String {
        for a in attributes where a.value == nil && ["sendrecv", "sendonly", "recvonly", "inactive"].contains(a.name) { return a.name }
        return "sendrecv"
    }
}
