import Hummingbird
import HummingbirdWebSocket
import Logging
import Prometheus
import RingSFU

/// The HTTP side of `ringsfu serve`: the JSON-RPC WebSocket endpoint, a
/// Prometheus `/metrics` endpoint, a health check and a small landing page.
enum ServerApp {
    static func build(host: String, port: Int, pool: WorkerPool, metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                      logLevel: Logger.Level = .info) -> some ApplicationProtocol {
        let router = Hummingbird.Router(context: BasicWebSocketRequestContext.self)
        router.get("/health") { _, _ in "ok" }
        let factory = PrometheusMetricsFactory(registry: metrics)
        router.get("/metrics") { _, _ in
            // Fresh figures from every worker, then the text exposition format.
            for worker in await pool.workers { await worker.publishMetrics(factory: factory) }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: landingPage)))
        }
        router.ws("/rpc") { inbound, outbound, _ in
            try await serveRpc(pool: pool, inbound: inbound, outbound: outbound)
        }
        var logger = Logger(label: "ringsfu.http")
        logger.logLevel = logLevel
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router),
            configuration: .init(address: .hostname(host, port: port)),
            logger: logger
        )
    }

    /// One JSON-RPC session per connection: requests in order, responses and
    /// notifications through one writer so their order is kept.
    static func serveRpc(pool: WorkerPool, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let session = await RpcSession(pool: pool)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await text in session.outbound {
                    try await outbound.write(.text(text))
                }
            }
            do {
                for try await message in inbound.messages(maxSize: 4 << 20) {
                    switch message {
                    case .text(let text): await session.handle(text)
                    case .binary(let buffer): await session.handle(String(buffer: buffer))
                    }
                }
            } catch {
                // A broken connection ends the session like a clean close.
            }
            await session.end()
            try await group.waitForAll()
        }
    }

    static let landingPage = """
    <!doctype html>
    <html><head><meta charset="utf-8"><title>RingSFU</title></head>
    <body>
    <h1>RingSFU</h1>
    <p>JSON-RPC 2.0 control API over WebSocket at <code>/rpc</code>. See <code>doc/rpc.md</code>.</p>
    <pre id="out">connecting...</pre>
    <script>
    const ws = new WebSocket(`ws://${location.host}/rpc`);
    ws.onopen = () => ws.send(JSON.stringify({jsonrpc: "2.0", id: 1, method: "worker.list"}));
    ws.onmessage = (e) => { document.getElementById("out").textContent = "workers: " + e.data; };
    </script>
    </body></html>
    """
}
