/// The Redis serialization protocol (RESP2), as far as the cluster's few
/// commands need it: commands go out as arrays of bulk strings; replies are
/// parsed with bounds (a hostile or broken server gets an error, not a
/// trap or an unbounded buffer).
enum RespValue: Sendable, Equatable {
    case simple(String)
    case error(String)
    case integer(Int)
    /// Nil: the null bulk string (a missing key).
    case bulk(String?)
    /// Nil: the null array.
    case array([RespValue]?)

    var string: String? {
        switch self {
        case .simple(let s): s
        case .bulk(let s): s
        default: nil
        }
    }
}

struct RespError: Error, Sendable, Equatable, CustomStringConvertible {
    var description: String
}

enum Resp {
    /// Largest bulk string and array accepted: node and room records are a
    /// few hundred bytes; a node lists at most the cluster's nodes.
    static let maxBulkBytes = 1 << 20
    static let maxArrayCount = 100_000
    static let maxDepth = 4

    /// A command as RESP: `*N` then `$len` + bytes for each argument.
    static func encode(_ args: [String]) -> [UInt8] {
        var out = Array("*\(args.count)\r\n".utf8)
        for a in args {
            let bytes = Array(a.utf8)
            out += Array("$\(bytes.count)\r\n".utf8)
            out += bytes
            out += [13, 10]
        }
        return out
    }

    /// Parses one reply from the start of `bytes`: the value and the bytes
    /// it took, nil while incomplete, an error when malformed.
    static func parse(_ bytes: ArraySlice<UInt8>) throws(RespError) -> (RespValue, Int)? {
        var i = bytes.startIndex
        guard let v = try value(bytes, &i, depth: 0) else { return nil }
        return (v, i - bytes.startIndex)
    }

    private static func line(_ b: ArraySlice<UInt8>, _ i: inout Int) throws(RespError) -> String? {
        var j = i
        while j + 1 < b.endIndex {
            if b[j] == 13 && b[j + 1] == 10 {
                let s = String(decoding: b[i..<j], as: UTF8.self)
                i = j + 2
                return s
            }
            j += 1
            // A header line is short; a server sending kilobytes without CRLF is broken.
            guard j - i < 64 * 1024 else { throw RespError(description: "reply line over 64 KB") }
        }
        return nil
    }

    private static func integer(_ s: String) throws(RespError) -> Int {
        guard let n = Int(s) else { throw RespError(description: "not an integer: \(s.prefix(32))") }
        return n
    }

    private static func value(_ b: ArraySlice<UInt8>, _ i: inout Int, depth: Int) throws(RespError) -> RespValue? {
        guard depth <= maxDepth else { throw RespError(description: "reply nested deeper than \(maxDepth)") }
        guard i < b.endIndex else { return nil }
        let kind = b[i]
        var j = i + 1
        guard let header = try line(b, &j) else { return nil }
        switch kind {
        case UInt8(ascii: "+"):
            i = j
            return .simple(header)
        case UInt8(ascii: "-"):
            i = j
            return .error(header)
        case UInt8(ascii: ":"):
            let n = try integer(header)
            i = j
            return .integer(n)
        case UInt8(ascii: "$"):
            let n = try integer(header)
            if n == -1 { i = j; return .bulk(nil) }
            guard (0...maxBulkBytes).contains(n) else { throw RespError(description: "bulk string of \(n) bytes") }
            guard b.endIndex - j >= n + 2 else { return nil }
            guard b[j + n] == 13, b[j + n + 1] == 10 else { throw RespError(description: "bulk string not ended by CRLF") }
            let s = String(decoding: b[j..<(j + n)], as: UTF8.self)
            i = j + n + 2
            return .bulk(s)
        case UInt8(ascii: "*"):
            let n = try integer(header)
            if n == -1 { i = j; return .array(nil) }
            guard (0...maxArrayCount).contains(n) else { throw RespError(description: "array of \(n) elements") }
            var items: [RespValue] = []
            items.reserveCapacity(min(n, 1024))
            for _ in 0..<n {
                guard let v = try value(b, &j, depth: depth + 1) else { return nil }
                items.append(v)
            }
            i = j
            return .array(items)
        default:
            throw RespError(description: "unknown reply type byte \(kind)")
        }
    }
}
