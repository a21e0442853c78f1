import Testing
@testable import RingSFU

/// DataProducer/DataConsumer on DirectTransports: messages, pause, and the
/// closure paths with their events.
@Suite("Data producers and consumers") @RingSFUActor
struct DataTests {
    @Test func messagesFlowAndPauseStopsThem() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter()
        let a = try router.createDirectTransport(), b = try router.createDirectTransport()
        let tob = a.observer
        let dp = try a.produceData(DataProducerOptions(label: "chat", protocol: "json"))
        let dc = try b.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        #expect(dc.label == "chat" && dc.protocol == "json" && dc.type == "direct")
        let events = dc.events, ob = dc.observer
        try dp.send(text: "hello")
        try dp.send([1, 2, 3])
        try dp.send([])
        try dc.pause()
        try dp.send(text: "lost")
        try dc.resume()
        try dp.pause()
        try dp.send(text: "lost too")
        try dp.resume()
        try dp.send(text: "back")
        #expect(throws: SFUError.self) { try dp.send([1], ppid: 99) }
        let producerStats = try dp.getStats(), consumerStats = try dc.getStats()
        #expect(producerStats.first?.messagesReceived == 6) // also the ones sent while paused
        #expect(consumerStats.first?.messagesSent == 4)
        #expect(consumerStats.first?.type == "data-consumer")
        dp.close()
        let got = await collect(events)
        var messages: [(String, UInt32)] = []
        for e in got { if case let .message(m, ppid) = e { messages.append((String(decoding: m, as: UTF8.self), ppid)) } }
        #expect(messages.map(\.0) == ["hello", "\u{1}\u{2}\u{3}", "", "back"])
        #expect(messages.map(\.1) == [51, 53, 57, 51])
        #expect(names(got).filter { $0 != "message" } == ["dataProducerPause", "dataProducerResume", "dataProducerClose"])
        #expect(names(await collect(ob)) == ["pause", "resume", "pause", "resume", "close"])
        a.close()
        #expect(names(await collect(tob)) == ["newDataProducer", "close"])
        worker.close()
    }

    @Test func transportCloseClosesDataEntities() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter()
        let a = try router.createDirectTransport(), b = try router.createDirectTransport()
        let dp = try a.produceData()
        let sameSide = try a.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        let otherSide = try b.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        let dpe = dp.events, same = sameSide.events, other = otherSide.events
        a.close()
        #expect(names(await collect(dpe)) == ["transportClose"])
        #expect(names(await collect(same)) == ["transportClose"])
        #expect(names(await collect(other)) == ["dataProducerClose"])
        #expect(router.dataProducers.isEmpty)
        // Router close: silent below transports.
        let dp2 = try b.produceData()
        let dc2 = try b.consumeData(DataConsumerOptions(dataProducerId: dp2.id))
        let e2 = dc2.events
        router.close()
        #expect(names(await collect(e2)) == ["transportClose"])
        worker.close()
    }

    @Test func validationAndUnsupported() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let plain = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        #expect(throws: SFUError.unsupported("SCTP not enabled on this transport")) { _ = try plain.produceData() }
        let direct = try router.createDirectTransport()
        #expect(throws: SFUError.self) { _ = try direct.consumeData(DataConsumerOptions(dataProducerId: "nope")) }
        let dp = try direct.produceData(DataProducerOptions(id: "x"))
        #expect(throws: SFUError.self) { _ = try direct.produceData(DataProducerOptions(id: "x")) }
        dp.close()
        #expect(throws: SFUError.invalidState("DataProducer closed")) { try dp.send(text: "x") }
        // SCTP stream parameter rules (mediasoup's).
        #expect(try SctpStreamParameters(streamId: 1).validated().ordered == true)
        #expect(try SctpStreamParameters(streamId: 1, maxRetransmits: 3).validated().ordered == false)
        #expect(throws: SFUError.self) { try SctpStreamParameters(streamId: 1, maxPacketLifeTime: 10, maxRetransmits: 3).validated() }
        #expect(throws: SFUError.self) { try SctpStreamParameters(streamId: 1, ordered: true, maxRetransmits: 3).validated() }
        #expect(throws: SFUError.self) { try SctpStreamParameters(streamId: 70000).validated() }
        worker.close()
    }

    /// SCTP data entities on a WebRtcTransport (messages themselves are
    /// exchanged with a real peer in Tests/peers/test_aiortc_datachannel.py).
    @Test func sctpStreamsOnWebRtcTransport() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        var options = WebRtcTransportOptions(listenInfos: [loopback])
        options.enableSctp = true
        options.numSctpStreams = NumSctpStreams(OS: 16, MIS: 8)
        let t = try router.createWebRtcTransport(options)
        #expect(t.sctpParameters == SctpParameters(port: 5000, OS: 16, MIS: 8, maxMessageSize: 262_144))
        #expect(try t.sctpState == "new" && t.dump().sctpState == "new")
        #expect(throws: SFUError.invalidArgument("missing sctpStreamParameters")) { try t.produceData() }
        #expect(throws: SFUError.invalidArgument("sctpStreamParameters.streamId 8 not below the incoming stream count (MIS 8)")) {
            try t.produceData(DataProducerOptions(sctpStreamParameters: SctpStreamParameters(streamId: 8)))
        }
        let dp = try t.produceData(DataProducerOptions(sctpStreamParameters: SctpStreamParameters(streamId: 3, maxRetransmits: 2)))
        #expect(dp.type == "sctp" && dp.sctpStreamParameters?.ordered == false)
        #expect(throws: SFUError.invalidArgument("sctpStreamParameters.streamId 3 already in use")) {
            try t.produceData(DataProducerOptions(sctpStreamParameters: SctpStreamParameters(streamId: 3)))
        }
        // Consumers get the lowest free streams, with the producer's reliability.
        let a = try t.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        let b = try t.consumeData(DataConsumerOptions(dataProducerId: dp.id))
        #expect(a.sctpStreamParameters == SctpStreamParameters(streamId: 0, ordered: false, maxRetransmits: 2))
        #expect(b.sctpStreamParameters?.streamId == 1)
        a.close()
        #expect(try t.consumeData(DataConsumerOptions(dataProducerId: dp.id)).sctpStreamParameters?.streamId == 0)
        // Without enableSctp there are no data entities.
        let plain = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
        #expect(plain.sctpParameters == nil)
        #expect(throws: SFUError.unsupported("SCTP not enabled on this transport")) { try plain.produceData() }
        options.numSctpStreams = NumSctpStreams(OS: 0, MIS: 8)
        #expect(throws: SFUError.invalidArgument("invalid numSctpStreams (OS and MIS from 1 to 65535)")) {
            try router.createWebRtcTransport(options)
        }
        let association = try #require(t.sctp?.id)
        t.close()
        #expect(t.sctpState == "closed")
        #expect(SctpStack.associations[association] == nil, "the association is freed with its transport")
        // A router closing frees it too.
        options.numSctpStreams = nil
        let other = try router.createWebRtcTransport(options)
        let second = try #require(other.sctp?.id)
        router.close()
        #expect(SctpStack.associations[second] == nil && other.sctpState == "closed")
        worker.close()
    }
}
