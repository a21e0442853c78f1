import Foundation
import Logging
import RingSFU

/// A node's record in Redis, refreshed every second with a 3 s lifetime:
/// a node that stops refreshing (dead, cut off) drops out by itself.
struct NodeRecord: Codable, Sendable, Equatable {
    var id: String
    /// Where clients and other nodes reach the node's HTTP API.
    var url: String
    /// Where the node's pipe transports listen (other nodes send media there).
    var pipeIp: String
    var rooms: Int
    var players: Int
    var version: String
}

struct ClusterSettings: Sendable {
    var redisHost: String
    var redisPort: Int
    var nodeId: String
    var nodeUrl: String
    var pipeIp: String
    /// The bearer token for other nodes' `/rpc` (the cluster shares its API token).
    var token: String?
    var nodeTtlMs = 3000
    var roomTtlMs = 5000
}

/// The cluster as one node sees it, coordinated through Redis (which
/// carries no media): node registration with liveness, and each room's
/// home node (where its publishers are). A room is claimed by the node its
/// first publisher reaches and held while that node refreshes it; a room
/// whose home stopped refreshing is claimed by the next node that needs it
/// (re-homing). Without Redis a node serves its own rooms as a lone node
/// and says so (`/cluster`, the `ringsfu_cluster_redis_up` gauge, a warning).
@RingSFUActor
final class ClusterNode {
    enum Home: Sendable, Equatable {
        /// This node (or Redis is unreachable: local service).
        case here
        case node(NodeRecord)
    }

    let settings: ClusterSettings
    private let redis: RedisClient
    private let logger = Logger(label: "ringsfu.cluster")
    private(set) var redisUp: Bool?
    private(set) var lastError: String?
    /// Rooms this node claimed, refreshed with each heartbeat.
    private var claimed = Set<String>()

    nonisolated init(settings: ClusterSettings) {
        self.settings = settings
        redis = RedisClient(host: settings.redisHost, port: settings.redisPort)
    }

    private func key(node id: String) -> String { "ringsfu:node:\(id)" }
    private func key(room name: String) -> String { "ringsfu:room:\(name)" }
    private func key(info name: String) -> String { "ringsfu:roominfo:\(name)" }

    /// Claims the room unless a live node holds it; the home's id.
    private func runClaim(_ room: String) async throws(RespError) -> String? {
        try await redis.command("EVAL", Self.claimScript, "1", key(room: room), settings.nodeId, String(settings.roomTtlMs), key(node: "")).string
    }

    /// Releases the room's claim (if ours) and its listing.
    private func release(_ room: String) async throws(RespError) {
        _ = try await redis.command("EVAL", Self.releaseScript, "1", key(room: room), settings.nodeId)
        _ = try await redis.command("DEL", key(info: room))
    }

    private static func json(_ value: some Encodable) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
    }

    private func note(_ up: Bool, _ error: String? = nil) {
        if up != redisUp {
            if up { logger.info("cluster: Redis reachable", metadata: ["node": "\(settings.nodeId)"]) }
            else { logger.warning("cluster: Redis unreachable, serving local rooms only", metadata: ["error": "\(error ?? "")"]) }
        }
        redisUp = up
        lastError = up ? nil : error
    }

    /// Registers the node and refreshes its room claims; `rooms`: the
    /// rooms homed here now (claims of closed rooms are released), whose
    /// publisher lists go to Redis too, for `GET /rooms` on other nodes.
    func heartbeat(rooms: [RoomInfo], players: Int) async {
        let record = NodeRecord(id: settings.nodeId, url: settings.nodeUrl, pipeIp: settings.pipeIp, rooms: rooms.count, players: players,
                                version: RingSFUVersion.current)
        do {
            _ = try await redis.command("SET", key(node: settings.nodeId), Self.json(record), "PX", String(settings.nodeTtlMs))
            _ = try await redis.command("SADD", "ringsfu:nodes", settings.nodeId)
            let open = Set(rooms.map(\.name))
            for name in claimed.subtracting(open) {
                try await release(name)
                claimed.remove(name)
            }
            for info in rooms {
                let name = info.name
                // Re-claimed, not only refreshed: after a Redis outage or a
                // restart the key may be gone.
                let home = try await runClaim(name)
                if home == settings.nodeId {
                    claimed.insert(name)
                    _ = try await redis.command("SET", key(info: name), Self.json(info), "PX", String(settings.roomTtlMs))
                } else {
                    logger.warning("cluster: room also homed on another node", metadata: ["room": "\(name)", "home": "\(home ?? "?")"])
                }
            }
            note(true)
        } catch {
            note(false, error.description)
        }
    }

    /// Claims the room for this node unless a live node holds it.
    func claim(room: String) async -> Home {
        do {
            let home = try await runClaim(room)
            note(true)
            guard let id = home, id != settings.nodeId else {
                claimed.insert(room)
                return .here
            }
            return try await record(id).map { .node($0) } ?? .here
        } catch {
            note(false, "\(error)")
            return .here
        }
    }

    /// The room as its home node last described it (nil: no live home, or
    /// Redis is unreachable).
    func roomInfo(_ room: String) async -> RoomInfo? {
        guard let json = try? await redis.command("GET", key(info: room)).string else { return nil }
        return try? JSONDecoder().decode(RoomInfo.self, from: Data(json.utf8))
    }

    /// The room's home, without claiming it: nil when no live node holds it.
    func home(of room: String) async -> Home? {
        do {
            let id = try await redis.command("GET", key(room: room)).string
            note(true)
            guard let id else { return nil }
            if id == settings.nodeId { return .here }
            return try await record(id).map { .node($0) }
        } catch {
            note(false, "\(error)")
            return nil
        }
    }

    private func record(_ id: String) async throws(RespError) -> NodeRecord? {
        guard let json = try await redis.command("GET", key(node: id)).string else { return nil }
        return try? JSONDecoder().decode(NodeRecord.self, from: Data(json.utf8))
    }

    /// The live nodes (members whose record expired are dropped from the set).
    func nodes() async -> [NodeRecord] {
        do {
            guard case .array(let members?) = try await redis.command("SMEMBERS", "ringsfu:nodes") else { return [] }
            var out: [NodeRecord] = []
            for case .bulk(let id?) in members.prefix(1000) {
                if let r = try await record(id) { out.append(r) } else { _ = try await redis.command("SREM", "ringsfu:nodes", id) }
            }
            note(true)
            return out.sorted { $0.id < $1.id }
        } catch {
            note(false, "\(error)")
            return []
        }
    }

    /// Leaves the cluster at shutdown: the node's record and claims go at
    /// once instead of expiring.
    func leave() async {
        for name in claimed { try? await release(name) }
        claimed.removeAll()
        _ = try? await redis.command("DEL", key(node: settings.nodeId))
        _ = try? await redis.command("SREM", "ringsfu:nodes", settings.nodeId)
    }

    /// Sets the room's home to ARGV[1] unless a node whose record
    /// (ARGV[3] .. id) still exists holds it; returns the home.
    static let claimScript = """
        local h = redis.call('GET', KEYS[1])
        if h == false or h == ARGV[1] or redis.call('EXISTS', ARGV[3] .. h) == 0 then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return ARGV[1]
        end
        return h
        """

    /// Deletes the room's claim only if this node holds it.
    static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """
}
