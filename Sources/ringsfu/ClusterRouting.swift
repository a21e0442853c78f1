import Foundation
import Hummingbird
import NIOCore
import RingSFU

/// Where a WHIP/WHEP request goes in a cluster: a publisher to the room's
/// home node (307 to its WHIP URL, which RFC 9725 clients follow; the room
/// is claimed here when no live node holds it), a player to a mirror of
/// the room on this node (set up on first use). Nil: serve it here.
enum ClusterRouting {
    static func route(_ request: Request, room: String, role: Rooms.Role, publisher: String?, rooms: Rooms, cluster: ClusterNode) async -> Response? {
        switch role {
        case .publish:
            guard case .node(let home) = await cluster.claim(room: room) else { return nil }
            var location = "\(home.url)/whip/\(room)"
            if let query = request.uri.query, !query.isEmpty { location += "?\(query)" }
            return Response(status: .temporaryRedirect, headers: [.location: location, .contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "room \(room) is homed on node \(home.id)\n")))
        case .play:
            let local = await rooms.rooms[room]
            if let local, await local.mirror == nil { return nil }
            let home: NodeRecord
            if let mirror = await local?.mirror { home = mirror.home } else {
                guard case .node(let h)? = await cluster.home(of: room) else { return nil }
                home = h
            }
            do throws(Rooms.Refusal) {
                try await rooms.mirror(room: room, home: home, cluster: cluster, publisher: publisher)
                return nil
            } catch {
                return WhipWhep.refusal(error)
            }
        }
    }
}

/// `GET /cluster`: this node, Redis's state and the live nodes (admin or
/// API token when one is set, as for `/rpc`).
enum ClusterStatus {
    struct Body: Encodable {
        var node: String
        var url: String
        var redis: String
        var error: String?
        var nodes: [NodeRecord]
    }

    static func register(_ router: Hummingbird.Router<RpcRequestContext>, cluster: ClusterNode, limits: ServerLimits) {
        router.get("/cluster") { request, _ in
            guard ServerApp.authenticate(request, limits: limits) != nil else {
                return WhipWhep.plain(.unauthorized, "missing or wrong API token")
            }
            let nodes = await cluster.nodes()
            let (up, error) = await (cluster.redisUp, cluster.lastError)
            let body = Body(node: cluster.settings.nodeId, url: cluster.settings.nodeUrl,
                            redis: up == true ? "up" : up == false ? "unreachable" : "unknown", error: error, nodes: nodes)
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data())))
        }
    }
}
