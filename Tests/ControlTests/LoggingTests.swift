import Logging
import Testing
@testable import RingSFU

/// The library logs through the application's swift-log setup: without a
/// level in the settings it keeps the level the application's handler has.
@Suite("Logging")
struct LoggingTests {
    @Test @RingSFUActor func workerKeepsTheApplicationsLevel() async throws {
        let application = Logger(label: "application").logLevel
        let worker = try await Worker.create(WorkerSettings(rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 4, maxProducers: 4, maxConsumers: 4))
        defer { worker.close() }
        #expect(worker.logger.logLevel == application)
        let chatty = try await Worker.create(WorkerSettings(logLevel: "trace", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 4, maxProducers: 4, maxConsumers: 4))
        defer { chatty.close() }
        #expect(chatty.logger.logLevel == .trace)
    }
}
