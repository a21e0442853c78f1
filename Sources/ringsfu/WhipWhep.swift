import Foundation
import Hummingbird
import NIOCore
import RingSFU

/// Who may publish and play, per room and server-wide.
struct RoomTokens: Sendable {
    var publish: String?
    var play: String?

    func token(_ role: Rooms.Role) -> String? { role == .publish ? publish : play }
}

/// WHIP ingest (RFC 9725) at `/whip/{room}` and WHEP playback at
/// `/whep/{room}`: POST an SDP offer, get 201 with the answer and the
/// session's `Location`; PATCH it for an ICE restart; DELETE it to leave.
/// `GET /rooms/{room}` lists the publishers a page can play.
enum WhipWhep {
    /// Largest SDP offer accepted (browsers send 5-20 KB).
    static let maxOfferBytes = 64 * 1024
    static let maxFragmentBytes = 16 * 1024
    static let linkHeader = HTTPFields.Element.Name("Link")!

    static func register(_ router: Hummingbird.Router<RpcRequestContext>, rooms: Rooms, limits: ServerLimits, cluster: ClusterNode? = nil) {
        for (prefix, role) in [("whip", Rooms.Role.publish), ("whep", .play)] {
            router.post("/\(prefix)/{room}") { request, context in
                let room = context.parameters.get("room") ?? ""
                if let refused = check(request, room: room, role: role, limits: limits, contentType: "application/sdp") { return refused }
                let text: String
                switch await body(request, limit: maxOfferBytes) {
                case .success(let t): text = t
                case .failure(let e): return e.response
                }
                let offer: SessionDescription
                do throws(SdpError) { offer = try SessionDescription(parsing: text) } catch { return plain(.badRequest, error.description) }
                let publisher = request.uri.queryParameters["publisher"].map(String.init)
                if let cluster, let routed = await ClusterRouting.route(request, room: room, role: role, publisher: publisher, rooms: rooms, cluster: cluster) {
                    return routed
                }
                do throws(Rooms.Refusal) {
                    let created = try await role == .publish ? rooms.publish(room: room, offer: offer) : rooms.play(room: room, publisher: publisher, offer: offer)
                    var headers: HTTPFields = [
                        .contentType: "application/sdp",
                        .location: "/\(prefix)/\(room)/\(created.id)",
                        .eTag: created.etag,
                        .init("Accept-Patch")!: "application/trickle-ice-sdpfrag",
                    ]
                    for link in limits.iceServers.linkHeaders() { headers.append(HTTPFields.Element(name: Self.linkHeader, value: link)) }
                    return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(string: created.answer)))
                } catch {
                    return refusal(error)
                }
            }
            router.on("/\(prefix)/{room}", method: .options) { request, context in
                // RFC 9725: the ICE servers may be asked for before the offer, with the role's token.
                var headers: HTTPFields = [.init("Accept-Post")!: "application/sdp", .allow: "OPTIONS, POST"]
                let room = context.parameters.get("room") ?? ""
                if check(request, room: room, role: role, limits: limits, contentType: nil) == nil {
                    for link in limits.iceServers.linkHeaders() { headers.append(HTTPFields.Element(name: Self.linkHeader, value: link)) }
                }
                return Response(status: .noContent, headers: headers)
            }
            router.delete("/\(prefix)/{room}/{session}") { request, context in
                let room = context.parameters.get("room") ?? "", id = context.parameters.get("session") ?? ""
                if let refused = check(request, room: room, role: role, limits: limits, contentType: nil) { return refused }
                guard await rooms.session(exists: id, room: room, role: role) else { return plain(.notFound, "no such session") }
                await rooms.end(id, reason: "DELETE")
                return Response(status: .ok)
            }
            router.patch("/\(prefix)/{room}/{session}") { request, context in
                let room = context.parameters.get("room") ?? "", id = context.parameters.get("session") ?? ""
                if let refused = check(request, room: room, role: role, limits: limits, contentType: "application/trickle-ice-sdpfrag") { return refused }
                guard let etag = await rooms.etag(id, room: room, role: role) else { return plain(.notFound, "no such session") }
                if let match = request.headers[.ifMatch], match != "*", match != etag {
                    return plain(.preconditionFailed, "If-Match does not name this session's current ICE credentials")
                }
                let text: String
                switch await body(request, limit: maxFragmentBytes) {
                case .success(let t): text = t
                case .failure(let e): return e.response
                }
                do throws(Rooms.Refusal) {
                    guard let restart = try await rooms.patch(id, room: room, role: role, fragment: text) else { return Response(status: .noContent) }
                    return Response(status: .ok, headers: [.contentType: "application/trickle-ice-sdpfrag", .eTag: restart.etag],
                                    body: .init(byteBuffer: ByteBuffer(string: restart.fragment)))
                } catch {
                    return refusal(error)
                }
            }
        }
        router.get("/rooms/{room}") { request, context in
            let room = context.parameters.get("room") ?? ""
            if let refused = check(request, room: room, role: .play, limits: limits, contentType: nil) { return refused }
            var info = await rooms.describe(room)
            // Not homed here: the home node's list (players here play any
            // of its publishers through this node's mirror).
            if let cluster, await !rooms.isHome(of: room), let home = await cluster.roomInfo(room) { info = home }
            info.iceServers = limits.iceServers.entries()
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(info)) ?? Data())))
        }
    }

    /// The checks every request passes: a valid room name, the role's
    /// token, and the content type. Nil: go on.
    static func check(_ request: Request, room: String, role: Rooms.Role, limits: ServerLimits, contentType: String?) -> Response? {
        guard Rooms.validName(room) else { return plain(.badRequest, "a room name is 1 to 64 of A-Z a-z 0-9 _ - .") }
        guard authorized(request, room: room, role: role, limits: limits) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"ringsfu\"", .contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "missing or wrong Bearer token for \(role.rawValue) in room \(room)\n")))
        }
        if let contentType {
            let given = (request.headers[.contentType] ?? "").split(separator: ";").first.map { String($0).trimmingSpaces.lowercased() }
            guard given == contentType else { return plain(.unsupportedMediaType, "Content-Type must be \(contentType)") }
        }
        return nil
    }

    /// Whether the request's Bearer token allows `role` in `room`: the
    /// room's token for the role, else the server-wide one; the API and
    /// admin secrets allow everything. With no token configured at all (a
    /// loopback server), everyone may.
    static func authorized(_ request: Request, room: String, role: Rooms.Role, limits: ServerLimits) -> Bool {
        let roleToken = limits.roomTokens[room]?.token(role) ?? limits.serverTokens.token(role)
        let accepted = [roleToken, limits.apiToken, limits.adminToken].compactMap { $0 }
        guard roleToken != nil || limits.apiToken != nil else { return true }
        guard let auth = request.headers[.authorization] else { return false }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let offered = String(parts[1]).trimmingSpaces
        // Compare with every accepted secret, so the time taken does not say which matched.
        var ok = false
        for secret in accepted where ServerApp.constantTimeEqual(offered, secret) { ok = true }
        return ok
    }

    static func body(_ request: Request, limit: Int) async -> Result<String, ResponseError> {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch {
            return .failure(ResponseError(plain(.contentTooLarge, "body larger than \(limit) bytes")))
        }
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self) else {
            return .failure(ResponseError(plain(.badRequest, "body is not UTF-8")))
        }
        return .success(text)
    }

    struct ResponseError: Error { let response: Response; init(_ r: Response) { response = r } }

    static func refusal(_ error: Rooms.Refusal) -> Response {
        switch error {
        case .notFound(let m): plain(.notFound, m)
        case .full(let m): Response(status: .serviceUnavailable, headers: [.retryAfter: "5", .contentType: "text/plain; charset=utf-8"],
                                    body: .init(byteBuffer: ByteBuffer(string: m + "\n")))
        case .rejected(.unsupported(let m)): plain(.unprocessableContent, m)
        case .rejected(let e): plain(.badRequest, e.message)
        }
    }

    static func plain(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}
