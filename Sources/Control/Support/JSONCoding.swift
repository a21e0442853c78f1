import Foundation

extension JSONValue {
    /// Converts any Encodable value (e.g. a tuple or rtpParameters) to a JSON value.
    public static func encoding<T: Encodable>(_ value: T) -> JSONValue {
        guard let data = try? JSONEncoder().encode(value),
              let json = try? JSONDecoder().decode(JSONValue.self, from: data) else { return .null }
        return json
    }

    /// Decodes this JSON value as `T`, reporting the failing field by name.
    public func decode<T: Decodable>(_ type: T.Type, field: String = "params") throws(SFUError) -> T {
        do {
            let data = try JSONEncoder().encode(self)
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw .invalidArgument(Self.describe(error, root: field))
        } catch {
            throw .invalidArgument("invalid \(field): \(error)")
        }
    }

    static func path(_ codingPath: [any CodingKey], root: String) -> String {
        var s = root
        for key in codingPath {
            if let i = key.intValue { s += "[\(i)]" } else { s += "." + key.stringValue }
        }
        return s
    }

    static func describe(_ error: DecodingError, root: String) -> String {
        switch error {
        case .keyNotFound(let key, let ctx):
            return "missing \(path(ctx.codingPath + [key], root: root))"
        case .typeMismatch(let type, let ctx):
            return "invalid \(path(ctx.codingPath, root: root)): expected \(type)"
        case .valueNotFound(let type, let ctx):
            return "missing \(path(ctx.codingPath, root: root)) (expected \(type))"
        case .dataCorrupted(let ctx):
            return "invalid \(path(ctx.codingPath, root: root)): \(ctx.debugDescription)"
        @unknown default:
            return "invalid \(root)"
        }
    }
}
