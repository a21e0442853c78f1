import Testing
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// pipeToRouter between routers of two workers (two forwarder threads):
/// real packets from a PlainTransport producer in worker 1 reach a
/// PlainTransport consumer in worker 2 through the in-memory ring.
@Suite("pipeToRouter across workers") @RingSFUActor
struct PipeToRouterTests {
    struct Setup {
        let w1: Worker, w2: Worker
        let r1: Router, r2: Router
        let ingest: PlainTransport
        let producer: Producer
        let pipe: Router.PipeToRouterResult
        let consumer: Consumer
        let sink: TestSocket
        let sender: TestSocket
    }

    func setUp(sameWorker: Bool = false) async throws -> Setup {
        let w1 = try await testWorker()
        let w2 = sameWorker ? w1 : try await testWorker()
        let r1 = try w1.createRouter(mediaCodecs: [opus, vp8])
        let r2 = try w2.createRouter(mediaCodecs: [vp8, opus]) // other payload types
        let ingest = try r1.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingest.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 777)))
        let pipe = try r1.pipeToRouter(producerId: producer.id, router: r2)
        let sink = TestSocket()
        let egress = try r2.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: r2.rtpCapabilities))
        await w1.sync()
        await w2.sync()
        return Setup(w1: w1, w2: w2, r1: r1, r2: r2, ingest: ingest, producer: producer, pipe: pipe, consumer: consumer, sink: sink, sender: TestSocket())
    }

    func send(_ s: Setup, from: UInt16, count: Int) {
        for i in 0..<count {
            s.sender.send(makeRtp(pt: 96, seq: from &+ UInt16(i), ssrc: 777, payload: vp8Payload(keyFrame: i == 0)), to: UInt16(s.ingest.tuple.localPort))
        }
    }

    @Test(arguments: [false, true])
    func packetsCrossWorkers(sameWorker: Bool) async throws {
        let s = try await setUp(sameWorker: sameWorker)
        #expect(s.pipe.pipeProducer.id == s.producer.id)
        #expect(s.pipe.pipeConsumer.type == .pipe)
        #expect(s.pipe.pipeConsumer.rtpParameters.mid == nil)
        send(s, from: 500, count: 30)
        let got = await s.sink.receiveAll(30)
        #expect(got.count == 30)
        let vp8Pt = s.r2.rtpCapabilities.codecs!.first { $0.mimeType == "video/VP8" }!.preferredPayloadType!
        for (i, p) in got.enumerated() {
            let h = try p.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
            #expect(h.ssrc == s.consumer.rtpParameters.encodings![0].ssrc!)
            #expect(Int(h.payloadType) == vp8Pt)
            #expect(h.sequenceNumber == 500 &+ UInt16(i))
        }
        let u1 = await s.w1.getResourceUsage()
        #expect(u1.dropPipeFull == 0)
        let pair = try #require(s.r1.pipePairs[s.r2.id])
        let dump = try pair.local.dump()
        #expect(dump.tuple == nil && dump.peerTransportId == pair.remote.id)
        #expect(dump.consumerIds == [s.pipe.pipeConsumer.id] && dump.producerIds.isEmpty)
        #expect(try pair.remote.dump().producerIds == [s.pipe.pipeProducer.id])
        #expect(try await pair.local.getStats().first?.type == "pipe-transport")
        s.w1.close()
        if !sameWorker { s.w2.close() }
    }

    @Test func producerCloseCrossesThePipe() async throws {
        let s = try await setUp()
        let pcev = s.pipe.pipeConsumer.events, ppob = s.pipe.pipeProducer.observer, cev = s.consumer.events
        s.producer.close()
        #expect(names(await collect(pcev)) == ["producerClose"])
        #expect(names(await collect(ppob)) == ["close"])
        #expect(names(await collect(cev)) == ["producerClose"])
        #expect(s.r2.producers.isEmpty)
        await s.w1.sync(); await s.w2.sync()
        let (u1, u2) = (await s.w1.getResourceUsage(), await s.w2.getResourceUsage())
        #expect(u1.producers == 0 && u1.consumers == 0)
        #expect(u2.producers == 0 && u2.consumers == 0)
        s.w1.close(); s.w2.close()
    }

    @Test func pauseAndResumeCrossThePipe() async throws {
        let s = try await setUp()
        let cev = s.consumer.events
        try s.producer.pause()
        #expect(s.pipe.pipeProducer.paused)
        #expect(s.consumer.producerPaused)
        try s.producer.resume()
        #expect(!s.pipe.pipeProducer.paused)
        s.consumer.close()
        #expect(names(await collect(cev)) == ["producerPause", "producerResume"])
        s.w1.close(); s.w2.close()
    }

    @Test func closingEitherEnd() async throws {
        // Closing the pipe producer closes the pipe consumer.
        var s = try await setUp()
        var pcob = s.pipe.pipeConsumer.observer
        s.pipe.pipeProducer.close()
        #expect(names(await collect(pcob)) == ["close"])
        #expect(s.producer.consumerCount == 0)
        s.w1.close(); s.w2.close()

        // Closing the far router closes the pipe pair and the pipe consumer.
        s = try await setUp()
        pcob = s.pipe.pipeConsumer.observer
        let pev = s.pipe.pipeConsumer.events
        s.r2.close()
        #expect(names(await collect(pcob)) == ["close"])
        _ = await collect(pev)
        #expect(s.r1.transportCount == 1) // only the ingest transport is left
        #expect(s.r1.pipePairs.isEmpty)
        // Piping again builds a new pair.
        let r3 = try s.w2.createRouter(mediaCodecs: [vp8])
        let again = try s.r1.pipeToRouter(producerId: s.producer.id, router: r3)
        #expect(again.pipeProducer.id == s.producer.id)
        #expect(throws: SFUError.self) { _ = try s.r1.pipeToRouter(producerId: s.producer.id, router: r3) }
        #expect(throws: SFUError.self) { _ = try s.r1.pipeToRouter(producerId: s.producer.id, router: s.r1) }

        // Worker 2 dying closes its side; worker 1's pipe consumer follows.
        let pc = again.pipeConsumer.observer
        s.w2.simulateFatalError()
        #expect(names(await collect(pc)) == ["close"])
        s.w1.close()
    }
}

/// A PipeTransport over UDP between routers of two workers, as between
/// processes or hosts: each end connects to the other.
@Suite("PipeTransport over UDP") @RingSFUActor
struct UdpPipeTransportTests {
    @Test(arguments: [false, true])
    func mediaCrossesAUdpPipe(srtp: Bool) async throws {
        let w1 = try await testWorker(), w2 = try await testWorker()
        let r1 = try w1.createRouter(mediaCodecs: [opus, vp8])
        let r2 = try w2.createRouter(mediaCodecs: [vp8, opus])
        let p1 = try r1.createPipeTransport(PipeTransportOptions(listenInfo: loopback, enableSrtp: srtp))
        let p2 = try r2.createPipeTransport(PipeTransportOptions(listenInfo: loopback, enableSrtp: srtp))
        #expect((p1.srtpParameters != nil) == srtp)
        try p1.connect(ip: "127.0.0.1", port: p2.tuple!.localPort, srtpParameters: p2.srtpParameters)
        try p2.connect(ip: "127.0.0.1", port: p1.tuple!.localPort, srtpParameters: p1.srtpParameters)
        #expect(throws: SFUError.invalidState("connect() already called")) { try p1.connect(ip: "127.0.0.1", port: 1) }

        let ingest = try r1.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 31)))
        // What pipeToRouter does in-process, done by hand across the wire.
        let pipeConsumer = try p1.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: RtpCapabilities()))
        #expect(pipeConsumer.type == .pipe)
        let pipeProducer = try p2.produce(ProducerOptions(id: producer.id, kind: .audio, rtpParameters: pipeConsumer.rtpParameters))
        let sink = TestSocket()
        let egress = try r2.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: pipeProducer.id, rtpCapabilities: r2.rtpCapabilities))
        await w1.sync(); await w2.sync()
        let sender = TestSocket()
        for i in 0..<10 { sender.send(makeRtp(pt: 111, seq: UInt16(i), ssrc: 31), to: UInt16(ingest.tuple.localPort)) }
        let got = await sink.receiveAll(10)
        #expect(got.count == 10)
        let opusPt = r2.rtpCapabilities.codecs!.first { $0.mimeType == "audio/opus" }!.preferredPayloadType!
        if let first = got.first {
            let h = try first.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
            #expect(h.ssrc == consumer.rtpParameters.encodings![0].ssrc!)
            #expect(Int(h.payloadType) == opusPt)
        }
        let port = p1.tuple!.localPort
        p1.close()
        #expect(await portIsFree(port))
        w1.close(); w2.close()
    }

    /// enableRtx: a pipe consumer of video carries RTX and NACK, and a NACK
    /// arriving over the pipe (from the far router) is answered with RTX.
    @Test func enableRtxResendsOverThePipe() async throws {
        let w1 = try await testWorker()
        let r1 = try w1.createRouter(mediaCodecs: [vp8])
        let pipe = try r1.createPipeTransport(PipeTransportOptions(listenInfo: loopback, enableRtx: true))
        let far = TestSocket()
        try pipe.connect(ip: "127.0.0.1", port: Int(far.port))
        let ingest = try r1.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingest.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 77)))
        let pipeConsumer = try pipe.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: RtpCapabilities()))
        let rtx = try #require(pipeConsumer.rtpParameters.encodings?.first?.rtx?.ssrc)
        #expect(pipeConsumer.rtpParameters.codecs.contains { $0.mimeType.isRtxMime })
        #expect(pipeConsumer.rtpParameters.codecs.first?.rtcpFeedback?.contains { $0.type == "nack" && ($0.parameter ?? "").isEmpty } == true)
        await w1.sync()
        let sender = TestSocket()
        for i in 0..<3 { sender.send(makeRtp(pt: 96, seq: UInt16(i), ssrc: 77, payload: vp8Payload(keyFrame: i == 0)), to: UInt16(ingest.tuple.localPort)) }
        let got = await far.receiveAll(3)
        #expect(got.count == 3)
        let seq = try got[1].withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }.sequenceNumber
        var nack = [UInt8](repeating: 0, count: 16)
        _ = nack.withUnsafeMutableBytes { RtcpWriter.nack($0.baseAddress!, capacity: 16, sender: 5, media: pipeConsumer.rtpParameters.encodings![0].ssrc!, count: 1) { _ in seq } }
        far.send(nack, to: UInt16(pipe.tuple!.localPort))
        let resent = try #require(await far.receiveAll(1).first)
        let h = try resent.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
        #expect(h.ssrc == rtx)
        // Without enableRtx, no RTX stream.
        let plainPipe = try r1.createPipeTransport(PipeTransportOptions(listenInfo: loopback))
        let c2 = try plainPipe.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: RtpCapabilities()))
        #expect(c2.rtpParameters.encodings?.first?.rtx == nil)
        w1.close()
    }

    /// Data producers cross the pipe too: messages from the application in
    /// router 1 reach a data consumer in router 2; closing the original
    /// closes the pipe data consumer and producer, and the far consumer
    /// hears `dataProducerClose`; pause crosses as well.
    @Test func dataProducersCrossThePipe() async throws {
        let w1 = try await testWorker(), w2 = try await testWorker()
        let r1 = try w1.createRouter(mediaCodecs: [opus]), r2 = try w2.createRouter(mediaCodecs: [opus])
        let source = try r1.createDirectTransport()
        let dp = try source.produceData(DataProducerOptions(label: "chat", protocol: "json"))
        let pipe = try r1.pipeToRouter(dataProducerId: dp.id, router: r2)
        #expect(pipe.pipeDataProducer.id == dp.id && pipe.pipeDataProducer.label == "chat" && pipe.pipeDataProducer.protocol == "json")
        #expect(pipe.pipeDataConsumer.type == "sctp" && pipe.pipeDataProducer.type == "sctp")
        #expect(pipe.pipeDataProducer.sctpStreamParameters == pipe.pipeDataConsumer.sctpStreamParameters)
        #expect(throws: SFUError.invalidState("DataProducer \"\(dp.id)\" is already piped to that Router")) {
            try r1.pipeToRouter(dataProducerId: dp.id, router: r2)
        }
        let sinkTransport = try r2.createDirectTransport()
        let far = try sinkTransport.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        let farEvents = far.events
        try dp.send(text: "hello")
        try dp.send([1, 2, 3])
        try dp.pause()
        try dp.send(text: "not while paused")
        try dp.resume()
        try dp.send(text: "again")
        let pcob = pipe.pipeDataConsumer.observer
        let pdpob = pipe.pipeDataProducer.observer
        dp.close()
        let events = await collect(farEvents)
        var messages: [String] = []
        for case let .message(bytes, _) in events { messages.append(String(decoding: bytes, as: UTF8.self)) }
        #expect(messages == ["hello", "\u{1}\u{2}\u{3}", "again"])
        #expect(names(events).filter { $0 != "message" } == ["dataProducerPause", "dataProducerResume", "dataProducerClose"])
        #expect(names(await collect(pcob)) == ["close"])
        #expect(names(await collect(pdpob)).last == "close")
        #expect(pipe.pipeDataProducer.closed && far.closed && r2.dataProducers[dp.id] == nil)

        // The far router closing takes the pipe pair, and with it the pipe
        // data consumer; the original data producer stays.
        let dp2 = try source.produceData()
        let pipe2 = try r1.pipeToRouter(dataProducerId: dp2.id, router: r2)
        let pcob2 = pipe2.pipeDataConsumer.observer
        r2.close()
        #expect(names(await collect(pcob2)) == ["close"])
        #expect(!dp2.closed && dp2.dataConsumers.isEmpty && r1.pipePairs.isEmpty)
        w1.close(); w2.close()
    }
}

/// SCTP straight over UDP pipe transports (mediasoup's way of piping data
/// producers between hosts): two routers on two workers, a pipe data
/// consumer on one side feeding a pipe data producer on the other.
@Suite("SCTP over UDP pipes") @RingSFUActor
struct SctpPipeTests {
    @Test func dataCrossesAUdpPipe() async throws {
        let w1 = try await testWorker(), w2 = try await testWorker()
        let r1 = try w1.createRouter(mediaCodecs: [opus]), r2 = try w2.createRouter(mediaCodecs: [opus])
        var options = PipeTransportOptions(listenInfo: loopback)
        options.enableSctp = true
        let a = try r1.createPipeTransport(options), b = try r2.createPipeTransport(options)
        #expect(a.sctpParameters == SctpParameters(port: 5000, OS: 1024, MIS: 1024, maxMessageSize: 262_144))
        try a.connect(ip: "127.0.0.1", port: try #require(b.tuple).localPort)
        try b.connect(ip: "127.0.0.1", port: try #require(a.tuple).localPort)
        for _ in 0..<150 where a.sctpState != "connected" || b.sctpState != "connected" {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(a.sctpState == "connected" && b.sctpState == "connected")

        let source = try r1.createDirectTransport()
        let dp = try source.produceData(DataProducerOptions(label: "chat"))
        let pipeConsumer = try a.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        #expect(pipeConsumer.type == "sctp" && pipeConsumer.sctpStreamParameters?.streamId == 0)
        _ = try b.produceData(DataProducerOptions(id: dp.id, sctpStreamParameters: pipeConsumer.sctpStreamParameters, label: dp.label))
        let sink = try r2.createDirectTransport()
        let far = try sink.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        let events = far.events
        let pipeEvents = pipeConsumer.events
        try pipeConsumer.setBufferedAmountLowThreshold(1000)
        let big = (0..<100_000).map { UInt8($0 % 251) }
        try dp.send(text: "over udp")
        try dp.send(big)
        #expect(try pipeConsumer.getBufferedAmount() > 1000, "queued until acknowledged")
        for _ in 0..<150 where far.messagesSent < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(far.messagesSent == 2)
        for _ in 0..<50 where try pipeConsumer.getBufferedAmount() > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try pipeConsumer.getStats()[0].bufferedAmount == 0)

        // A full send buffer (messages sent faster than the peer can
        // acknowledge): the message is refused and the data consumer says so.
        var small = options
        small.sctpSendBufferSize = 8192
        let c = try r1.createPipeTransport(small), d = try r2.createPipeTransport(small)
        try c.connect(ip: "127.0.0.1", port: try #require(d.tuple).localPort)
        try d.connect(ip: "127.0.0.1", port: try #require(c.tuple).localPort)
        for _ in 0..<150 where c.sctpState != "connected" { try await Task.sleep(for: .milliseconds(20)) }
        let tight = try c.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        let tightEvents = tight.events
        for _ in 0..<5 { try dp.send(Array(big[0..<6000])) }
        #expect(tight.messagesSent >= 1 && tight.messagesSent < 5)

        // The application closing the transport from inside the SCTP
        // callback that delivers a message (a notification tap runs
        // synchronously): the association is freed once usrsctp returns.
        let association = try #require(b.sctp?.id)
        w2.addNotificationTap { n in if n.method == "dataconsumer.message" { b.close() } }
        try dp.send(text: "last")
        for _ in 0..<100 where !b.closed { try await Task.sleep(for: .milliseconds(20)) }
        #expect(b.closed && SctpStack.associations[association] == nil)
        // Media sockets keep their job: no SCTP packet was counted as bad RTP.
        #expect(await w2.getResourceUsage().dropNotRtp == 0)
        w1.close(); w2.close()
        var got: [[UInt8]] = []
        for case let .message(bytes, _) in await collect(events) { got.append(bytes) }
        // The first two (later ones went through the tight pipe's test).
        let firstTwo = got.count >= 2 && got[0] == Array("over udp".utf8) && got[1] == big
        #expect(firstTwo)
        // At once when the threshold was set (nothing buffered), then each
        // time the queue drained back below it.
        let low = await collect(pipeEvents).compactMap { if case .bufferedAmountLow(let amount) = $0 { amount } else { nil } }
        #expect(low.first == 0 && low.count >= 2 && low.allSatisfy { $0 <= 1000 })
        #expect(await collect(tightEvents).contains { if case .sctpSendBufferFull = $0 { true } else { false } })
    }
}
