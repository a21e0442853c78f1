/// A room as `GET /rooms/{room}` shows it, and session ids.
struct RoomInfo: Codable, Sendable {
    struct Publisher: Codable, Sendable {
        var id: String
        var tracks: [String]
    }
    var name: String
    var publishers: [Publisher]
    var players: Int
    /// What a page gives its RTCPeerConnection (`iceServers`).
    var iceServers: [IceServers.Entry] = []
}

enum SessionIds {
    /// Session ids go into URLs: 128 random bits, hex.
    static func sessionId() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(rng.next() as UInt64, radix: 16).leftPadded(16) }.joined()
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
