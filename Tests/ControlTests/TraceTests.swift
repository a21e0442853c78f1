import Testing
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// enableTraceEvent on producers and consumers: only the enabled types are
/// reported, with direction and RTP fields; unknown types are refused.
@Suite("Trace events") @RingSFUActor
struct TraceTests {
    @Test func producerAndConsumerTraces() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 4242)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        let ssrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        #expect(throws: SFUError.self) { try producer.enableTraceEvent(types: ["rtp", "bogus"]) }
        try producer.enableTraceEvent(types: ["rtp", "keyframe", "pli"])
        try consumer.enableTraceEvent(types: ["keyframe", "pli", "nack"])
        let pev = producer.events, cev = consumer.events
        // Collected as they come (events are delivered asynchronously).
        var ptraces: [TraceEventData] = [], ctraces: [TraceEventData] = []
        let pTask = Task { for await e in pev { if case .trace(let d) = e { ptraces.append(d) } } }
        let cTask = Task { for await e in cev { if case .trace(let d) = e { ctraces.append(d) } } }
        await worker.sync()
        let feeder = TestSocket()
        feeder.send(makeRtp(pt: 96, seq: 1, ssrc: 4242, payload: vp8Payload(keyFrame: true)), to: UInt16(ingress.tuple.localPort))
        feeder.send(makeRtp(pt: 96, seq: 2, ssrc: 4242, payload: vp8Payload(keyFrame: false)), to: UInt16(ingress.tuple.localPort))
        #expect(await sink.receiveAll(2).count == 2)
        var buf = [UInt8](repeating: 0, count: 64)
        let pli = buf.withUnsafeMutableBytes { RtcpWriter.pli($0.baseAddress!, capacity: 64, sender: 1, media: ssrc) }
        sink.send(Array(buf[0..<pli]), to: UInt16(egress.tuple.localPort))
        let nack = buf.withUnsafeMutableBytes { RtcpWriter.nack($0.baseAddress!, capacity: 64, sender: 1, media: ssrc, count: 1) { _ in 0 } }
        sink.send(Array(buf[0..<nack]), to: UInt16(egress.tuple.localPort))
        for _ in 0..<250 {
            if ptraces.contains(where: { $0.type == "pli" }) && ctraces.contains(where: { $0.type == "nack" }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        worker.close()
        _ = await pTask.value
        _ = await cTask.value
        #expect(ptraces.filter { $0.type == "rtp" }.map(\.info.sequenceNumber) == [1, 2])
        #expect(ptraces.filter { $0.type == "rtp" }.allSatisfy { $0.direction == "in" && $0.info.ssrc == 4242 && $0.info.payloadType == 96 })
        #expect(ptraces.filter { $0.type == "keyframe" }.count == 1)
        #expect(ptraces.contains { $0.type == "pli" && $0.direction == "out" })
        #expect(ctraces.filter { $0.type == "keyframe" }.map(\.direction) == ["out"])
        #expect(ctraces.filter { $0.type == "keyframe" }.first?.info.ssrc == ssrc)
        #expect(ctraces.contains { $0.type == "pli" && $0.direction == "in" })
        #expect(ctraces.contains { $0.type == "nack" && $0.direction == "in" && $0.info.count == 1 })
        #expect(!ctraces.contains { $0.type == "rtp" }, "rtp was not enabled on the consumer")
    }
}
