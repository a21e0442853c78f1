import Testing
import RingSFUTestSupport
import RingSFUCShims
@testable import RingSFU
@testable import RingSFUForwarder

/// The loop's coalescing (`WorkerSettings.coalesceMicroseconds`) on real
/// sockets: a steady stream fast enough to gather (5k packets/s, above one
/// per 300 us window) comes out whole and in order, and when it stops the
/// last packets still leave at once (a wait for a batch that never fills
/// must end at the minimum wait, not at the next timer).
@Suite("Coalescing") @RingSFUActor
struct CoalescingTests {
    @Test func aSteadyStreamComesOutWholeAndTheTailAtOnce() async throws {
        var settings = WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999)
        settings.coalesceMicroseconds = 300
        let worker = try await Worker.create(settings)
        defer { worker.close() }
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingest.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 4444)))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        let sender = TestSocket()
        let port = UInt16(ingest.tuple.localPort)
        var received: [[UInt8]] = []
        func drain() async { while let d = await sink.receive(timeoutMs: 0) { received.append(d) } }
        // 0.6 s at 5k packets/s: five every millisecond, the first a key frame.
        let total = 3000
        for i in 0..<total {
            sender.send(makeRtp(pt: 96, seq: UInt16(i), ts: UInt32(i / 5) * 90, ssrc: 4444, payload: vp8Payload(keyFrame: i == 0)), to: port)
            if i % 5 == 4 {
                try await Task.sleep(for: .milliseconds(1))
                await drain()
            }
        }
        let stoppedNs = rsfu_monotonic_ns()
        received += await sink.receiveAll(total - received.count, timeoutMs: 2000)
        let tailMs = Double(rsfu_monotonic_ns() - stoppedNs) / 1e6
        #expect(received.count == total)
        let sequences = try received.map { p in try p.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count).sequenceNumber } }
        #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $1 == $0 &+ 1 }, "in order, no gap")
        // Generous for a loaded machine; a stalled batch would wait for a
        // timer (reports: a second) or forever.
        #expect(tailMs < 200, "the last packets left \(tailMs) ms after the stream stopped")
    }
}
