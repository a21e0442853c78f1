import Foundation
import RingSFUCShims

/// STUN/TURN servers for clients (ICE-lite never gathers: clients behind
/// restrictive firewalls reach us only through their TURN relay). TURN
/// credentials follow coturn's REST API (`use-auth-secret`): the username
/// is `<expiry>:ringsfu`, the password the base64 HMAC-SHA1 of it under the
/// shared secret, so they expire on their own and need no per-user state.
struct IceServers: Sendable {
    var urls: [String] = []
    var turnSecret: String? = nil
    var credentialLifetime = 86400

    struct Entry: Codable, Sendable, Equatable {
        var urls: String
        var username: String?
        var credential: String?
    }

    /// The list for a client now (credentials for `turn:`/`turns:` URLs).
    func entries(now: Date = Date()) -> [Entry] {
        let username = "\(Int(now.timeIntervalSince1970) + credentialLifetime):ringsfu"
        let credential = turnSecret.map { Self.credential(secret: $0, username: username) }
        return urls.map { url in
            let turn = url.hasPrefix("turn:") || url.hasPrefix("turns:")
            return Entry(urls: url, username: turn ? username : nil, credential: turn ? credential : nil)
        }
    }

    static func credential(secret: String, username: String) -> String {
        let key = Array(secret.utf8), data = Array(username.utf8)
        var mac = [UInt8](repeating: 0, count: 20)
        rsfu_hmac_sha1(key, key.count, data, data.count, &mac)
        return Data(mac).base64EncodedString()
    }

    /// RFC 9725 section 4.6: one `Link` header per server.
    func linkHeaders(now: Date = Date()) -> [String] {
        entries(now: now).map { e in
            var link = "<\(e.urls)>; rel=\"ice-server\""
            if let username = e.username, let credential = e.credential {
                link += "; username=\"\(username)\"; credential=\"\(credential)\"; credential-type=\"password\""
            }
            return link
        }
    }

    /// `stun:`/`turn:`/`turns:` URLs only, without spaces or quotes (they
    /// go into headers).
    static func validate(_ url: String) -> Bool {
        (url.hasPrefix("stun:") || url.hasPrefix("turn:") || url.hasPrefix("turns:")) && url.count <= 256
            && url.allSatisfy { $0.isASCII && !$0.isWhitespace && $0 != "\"" && $0 != "<" && $0 != ">" && $0 != "," }
    }
}
