import Hummingbird

/// Cross-origin rules for the WHIP/WHEP and room endpoints: pages of the
/// server's own origin and of `--allowed-origin` may call them (CORS
/// answers name the page's origin and expose `Location`, `ETag` and
/// `Link`); other pages get 403, so that a site a user visits cannot
/// publish to or play from a server on their machine. Requests without
/// `Origin` (OBS, GStreamer, ffmpeg) are not affected.
struct WebOriginMiddleware: RouterMiddleware {
    typealias Context = RpcRequestContext
    let limits: ServerLimits
    let cors = CORSMiddleware<RpcRequestContext>(
        allowOrigin: .originBased,
        allowHeaders: [.authorization, .contentType, .ifMatch, .accept],
        allowMethods: [.get, .post, .patch, .delete, .options],
        exposedHeaders: ["Location", "ETag", "Link", "Accept-Patch", "Accept-Post"],
        maxAge: .seconds(600))

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/whip/") || path.hasPrefix("/whep/") || path.hasPrefix("/rooms/"), request.headers[.origin] != nil else {
            return try await next(request, context)
        }
        guard ServerApp.originAllowed(request, limits: limits) else {
            return WhipWhep.plain(.forbidden, "this page's origin may not use this server (see --allowed-origin)")
        }
        return try await cors.handle(request, context: context, next: next)
    }
}
