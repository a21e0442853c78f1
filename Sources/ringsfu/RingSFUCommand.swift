import ArgumentParser
import Logging
import Metrics
import Prometheus
import RingSFU

@main
struct RingSFUCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringsfu",
        abstract: "RingSFU: a WebRTC Selective Forwarding Unit.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the SFU with its JSON-RPC control API over WebSocket (/rpc).")

    @Option(help: "Address the HTTP/WebSocket control server listens on.")
    var host = "127.0.0.1"

    @Option(help: "Port of the HTTP/WebSocket control server.")
    var port = 8080

    @Option(help: "Number of forwarder workers (default: one per core).")
    var workers: Int?

    @Flag(help: "Pin worker i to CPU i.")
    var pin = false

    @Option(help: "Lowest UDP port for media.")
    var rtcMinPort = 10000

    @Option(help: "Highest UDP port for media.")
    var rtcMaxPort = 59999

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (or mediasoup's warn, none).")
    var logLevel = "info"

    func validate() throws {
        do { _ = try Worker.logLevel(named: logLevel) } catch { throw ValidationError(error.message) }
    }

    func run() async throws {
        let level = try Worker.logLevel(named: logLevel)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // One registry for everything that reports through swift-metrics;
        // /metrics exposes it.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let count = workers ?? max(1, System.coreCount)
        let pool = await WorkerPool()
        try await pool.start(count: count, settings: WorkerSettings(logLevel: logLevel, rtcMinPort: rtcMinPort, rtcMaxPort: rtcMaxPort), pin: pin)
        let app = ServerApp.build(host: host, port: port, pool: pool, metrics: registry, logLevel: level)
        Logger(label: "ringsfu").info("ringsfu serving", metadata: ["address": "http://\(host):\(port)", "rpc": "ws://\(host):\(port)/rpc",
                                                            "metrics": "http://\(host):\(port)/metrics", "workers": "\(count)"])
        try await app.runService()
        await pool.closeAll()
    }
}

enum System {
    static var coreCount: Int {
        #if canImport(Glibc)
        Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        1
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
