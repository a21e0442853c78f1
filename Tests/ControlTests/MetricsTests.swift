import Testing
import Prometheus
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// The swift-metrics export in Prometheus form: worker counters follow the
/// forwarder's, per-transport series appear and go with their transport.
@Suite("Metrics") @RingSFUActor
struct MetricsTests {
    func value(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.split(separator: " ").last!)
        }
        return nil
    }

    @Test func workerAndTransportSeries() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 9)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        let feeder = TestSocket()
        for i in 0..<5 { feeder.send(makeRtp(pt: 111, seq: UInt16(i), ssrc: 9), to: UInt16(ingress.tuple.localPort)) }
        feeder.send([0x80, 0x60, 0, 0], to: UInt16(ingress.tuple.localPort)) // malformed
        #expect(await sink.receiveAll(5).count == 5)
        await worker.publishMetrics(factory: factory)
        var text = registry.emitToString()
        let w = "{worker=\"\(worker.id)\"}"
        #expect(value(text, "ringsfu_packets_received_total\(w)") == 6)
        // The 5 packets, and any RTCP report that fell due meanwhile (a slow
        // parallel run can take seconds here: reports go out every second).
        let sent = value(text, "ringsfu_packets_sent_total\(w)") ?? 0, rtcp = value(text, "ringsfu_rtcp_sent_total\(w)") ?? 0
        #expect(sent >= 5 && sent <= 5 + rtcp, "\(sent) sent, \(rtcp) of them RTCP at most")
        #expect(value(text, "ringsfu_packets_dropped_total{worker=\"\(worker.id)\",reason=\"malformed\"}") == 1)
        #expect(value(text, "ringsfu_transports\(w)") == 2)
        #expect(text.contains("ringsfu_transport_packets_received_total{worker=\"\(worker.id)\",transport=\"\(ingress.id)\",type=\"plain-rtp-transport\"} 6"))
        // Counters only grow by what changed; a closed transport's series go.
        for i in 5..<8 { feeder.send(makeRtp(pt: 111, seq: UInt16(i), ssrc: 9), to: UInt16(ingress.tuple.localPort)) }
        _ = await sink.receiveAll(3)
        egress.close()
        await worker.sync()
        await worker.publishMetrics(factory: factory)
        text = registry.emitToString()
        #expect(value(text, "ringsfu_packets_received_total\(w)") == 9)
        #expect(!text.contains("transport=\"\(egress.id)\""))
        #expect(text.contains("transport=\"\(ingress.id)\""))
        worker.close()
    }
}

/// `getResourceUsage()` carries mediasoup's getrusage fields, read on the
/// forwarder thread: its context switches and CPU time, not the caller's.
@Suite("Resource usage") @RingSFUActor
struct ResourceUsageTests {
    @Test func rusageOfTheForwarderThread() async throws {
        let worker = try await testWorker()
        let first = await worker.getResourceUsage()
        // Each command wakes the idle thread: a voluntary context switch.
        for _ in 0..<20 {
            await worker.sync()
            try await Task.sleep(for: .milliseconds(2))
        }
        let later = await worker.getResourceUsage()
        #expect(later.ru_maxrss > 0)
        #expect(later.ru_nvcsw >= first.ru_nvcsw + 10)
        #expect(later.ru_utime + later.ru_stime >= first.ru_utime + first.ru_stime)
        // Thread figures: far fewer switches than the whole process made.
        var process = rusage()
        getrusage(RUSAGE_SELF.rawValue, &process)
        #expect(later.ru_nvcsw < process.ru_nvcsw)
        let json = String(decoding: try JSONEncoder().encode(later), as: UTF8.self)
        #expect(json.contains("\"ru_utime\"") && json.contains("\"ru_nivcsw\""))
        // mediasoup's log level names are accepted, others named.
        try worker.updateSettings(logLevel: "warn")
        #expect(worker.logger.logLevel == .warning)
        #expect(throws: SFUError.invalidArgument("invalid logLevel 'loud' (debug, warn, error, none, or a swift-log level)")) {
            try worker.updateSettings(logLevel: "loud")
        }
        await #expect(throws: SFUError.self) { _ = try await Worker.create(WorkerSettings(logLevel: "loud")) }
        worker.close()
    }
}
