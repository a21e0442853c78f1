import Testing
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

@Suite("DirectTransport") @RingSFUActor
struct DirectTransportTests {
    @Test func applicationProducesToPlainConsumer() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let direct = try router.createDirectTransport()
        let producer = try direct.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 42)))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        for i in 0..<5 { try producer.send(rtpPacket: makeRtp(pt: 111, seq: UInt16(i), ssrc: 42)) }
        await worker.sync()
        let got = await sink.receiveAll(5)
        #expect(got.count == 5)
        let ssrc = try got.first.map { try $0.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count).ssrc } }
        #expect(ssrc == consumer.rtpParameters.encodings?.first?.ssrc)
        #expect(throws: SFUError.self) { try producer.send(rtpPacket: []) }
        #expect(throws: SFUError.self) { try producer.send(rtpPacket: Array(repeating: 0x80, count: 5000)) }
        try direct.sendRtcp([0x80, 201, 0, 1, 0, 0, 0, 42])
        let usage = await worker.getResourceUsage()
        #expect(usage.rtcpIn == 1)
        worker.close()
    }

    @Test func plainProducerToApplicationConsumer() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 4242)))
        let direct = try router.createDirectTransport()
        let consumer = try direct.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        let events = consumer.events
        await worker.sync()
        let sender = TestSocket()
        for i in 0..<3 { sender.send(makeRtp(pt: 111, seq: UInt16(100 + i), ssrc: 4242), to: UInt16(ingest.tuple.localPort)) }
        // Read the first three events (the packets), then close the producer.
        var iterator = events.makeAsyncIterator()
        var packets: [[UInt8]] = []
        let deadline = ContinuousClock.now + .seconds(5)
        while packets.count < 3, ContinuousClock.now < deadline {
            guard let e = await iterator.next() else { break }
            if case .rtp(let p) = e { packets.append(p) }
        }
        #expect(packets.count == 3)
        producer.close()
        var rest: [ConsumerEvent] = []
        while let e = await iterator.next() { rest.append(e) }
        #expect(names(rest) == ["producerClose"])
        let seqs = try packets.map { p in try p.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count).sequenceNumber } }
        #expect(seqs == [100, 101, 102])
        // send() is only for direct producers.
        let other = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 1)))
        #expect(throws: SFUError.self) { try other.send(rtpPacket: makeRtp(seq: 1, ssrc: 1)) }
        worker.close()
    }

    @Test func closingTheDirectTransport() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let direct = try router.createDirectTransport()
        let producer = try direct.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 42)))
        let other = try router.createDirectTransport()
        let consumer = try other.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        let pev = producer.events, cev = consumer.events, tob = direct.observer
        direct.close()
        #expect(names(await collect(pev)) == ["transportClose"])
        #expect(names(await collect(tob)) == ["close"])
        #expect(names(await collect(cev)) == ["producerClose"])
        await worker.sync()
        let usage = await worker.getResourceUsage()
        #expect(usage.transports == 1 && usage.producers == 0 && usage.consumers == 0)
        worker.close()
    }
}
