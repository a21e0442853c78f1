import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import RingSFU
@testable import RingSFUServer

/// `/health` and `/ready` follow the workers: a worker whose forwarder
/// died makes the server unhealthy; it stays ready while another lives.
@Suite("Server health")
struct ServerHealthTests {
    @Test func healthAndReadinessFollowTheWorkers() async throws {
        let pool = await WorkerPool()
        try await pool.start(count: 2, settings: WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 16, maxProducers: 16, maxConsumers: 16))
        let readiness = Readiness()
        let app = try ServerApp.build(host: "127.0.0.1", port: 0, pool: pool, logLevel: .warning, readiness: readiness)
        try await app.test(.live) { client in
            try await client.execute(uri: "/health", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains(#""deadWorkers":0"#))
            }
            try await client.execute(uri: "/ready", method: .get) { r in #expect(r.status == .ok) }
            await pool.workers[1].simulateFatalError()
            var status = HTTPResponse.Status.ok, body = ""
            for _ in 0..<100 where status == .ok {
                try await client.execute(uri: "/health", method: .get) { r in
                    status = r.status
                    body = String(buffer: r.body)
                }
                if status == .ok { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(status == .serviceUnavailable)
            #expect(body.contains(#""status":"degraded""#) && body.contains(#""deadWorkers":1"#), "\(body)")
            // One worker still takes rooms: ready, until shutdown starts.
            try await client.execute(uri: "/ready", method: .get) { r in #expect(r.status == .ok) }
            readiness.drain()
            try await client.execute(uri: "/ready", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(String(buffer: r.body).contains("shutting down"))
            }
        }
        await pool.closeAll()
    }
}
