import Testing
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// Audio level observer fed with real RFC 6464 extensions over loopback.
@Suite("AudioLevelObserver") @RingSFUActor
struct AudioLevelObserverTests {
    nonisolated init() {}
    static let audioLevelUri = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

    func audioProducer(_ t: PlainTransport, ssrc: UInt32) throws -> Producer {
        var params = audioParams(ssrc: ssrc)
        params.headerExtensions = [RtpHeaderExtensionParameters(uri: Self.audioLevelUri, id: 3)]
        return try t.produce(ProducerOptions(kind: .audio, rtpParameters: params))
    }

    /// Sends `packets` packets whose audio level is `level` (-dBov).
    func talk(_ sender: TestSocket, port: Int, ssrc: UInt32, level: UInt8, packets: Int = 20, seq: UInt16 = 0) {
        for i in 0..<packets {
            sender.send(makeRtp(pt: 111, seq: seq &+ UInt16(i), ssrc: ssrc, extensions: [(3, [0x80 | level])]), to: UInt16(port))
        }
    }

    @Test func reportsLoudestProducersThenSilence() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let quiet = try audioProducer(t, ssrc: 1)
        let loud = try audioProducer(t, ssrc: 2)
        let mute = try audioProducer(t, ssrc: 3)
        let observer = try router.createAudioLevelObserver(AudioLevelObserverOptions(maxEntries: 2, threshold: -70, interval: 250))
        let ob = observer.observer
        for p in [quiet, loud, mute] { try observer.addProducer(producerId: p.id) }
        var events = observer.events.makeAsyncIterator()
        await worker.sync()
        let sender = TestSocket()
        talk(sender, port: t.tuple.localPort, ssrc: 1, level: 50)  // -50 dBov
        talk(sender, port: t.tuple.localPort, ssrc: 2, level: 10)  // -10 dBov
        talk(sender, port: t.tuple.localPort, ssrc: 3, level: 100) // below the threshold
        // The first report with sound: loudest first, at most maxEntries.
        var volumes: [AudioLevelObserverVolume] = []
        while volumes.isEmpty, let e = await events.next() {
            if case .volumes(let v) = e { volumes = v }
        }
        #expect(volumes.map(\.producer.id) == [loud.id, quiet.id])
        #expect(volumes.map(\.volume) == [-10, -50])
        // Nobody talks: one silence event.
        var sawSilence = false
        while !sawSilence, let e = await events.next() {
            if case .silence = e { sawSilence = true }
        }
        #expect(sawSilence)
        #expect(try observer.dump().producerIds.count == 3)
        // A closed producer leaves the observer.
        loud.close()
        #expect(observer.producers.count == 2)
        try observer.removeProducer(producerId: quiet.id)
        #expect(throws: SFUError.self) { try observer.addProducer(producerId: "nope") }
        try observer.pause(); try observer.resume()
        router.close()
        var rest: [AudioLevelObserverEvent] = []
        while let e = await events.next() { rest.append(e) }
        #expect(names(rest).last == "routerClose")
        #expect(names(await collect(ob)) == ["addProducer", "addProducer", "addProducer", "removeProducer", "pause", "resume", "close"])
        await worker.sync()
        let usage = await worker.getResourceUsage()
        #expect(usage.routers == 0 && usage.producers == 0)
        worker.close()
    }

    @Test func validation() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        #expect(throws: SFUError.self) { _ = try router.createAudioLevelObserver(AudioLevelObserverOptions(maxEntries: 0)) }
        #expect(throws: SFUError.self) { _ = try router.createAudioLevelObserver(AudioLevelObserverOptions(threshold: 5)) }
        #expect(throws: SFUError.self) { _ = try router.createAudioLevelObserver(AudioLevelObserverOptions(interval: 10)) }
        let o = try router.createAudioLevelObserver()
        o.close()
        #expect(throws: SFUError.invalidState("RtpObserver closed")) { try o.pause() }
        worker.close()
    }
}

@Suite("ActiveSpeakerObserver") @RingSFUActor
struct ActiveSpeakerObserverTests {
    /// The paper's activity score on the three scales, against hand-computed values.
    @Test func activityScores() {
        // log C(13,11) + 13 log 1/2 - log 0.78 + 0.78 * 11
        #expect(abs(SpeakerActivity.score(11, 13, lambda: 0.78) - 4.17425) < 0.0001)
        #expect(SpeakerActivity.score(0, 13, lambda: 0.78) == SpeakerActivity.minScore)
        // 5 log 1/2 - log 24 + 24 * 5
        #expect(abs(SpeakerActivity.score(5, 5, lambda: 24) - 113.35621) < 0.0001)
        // Background at 20 sets the noise floor; speech at 112 is 11 subunits.
        var s = SpeakerActivity()
        s.record(volume: 20, samples: 50)
        s.record(volume: 112, samples: 50)
        s.evaluate()
        #expect(s.immediates.allSatisfy { $0 == 11 } && s.mediums.allSatisfy { $0 == 5 } && s.longs == [10])
    }

    @Test func dominantSpeakerFollowsWhoTalks() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let helper = AudioLevelObserverTests()
        let alice = try helper.audioProducer(t, ssrc: 11)
        let bob = try helper.audioProducer(t, ssrc: 12)
        let observer = try router.createActiveSpeakerObserver(ActiveSpeakerObserverOptions(interval: 100))
        try observer.addProducer(producerId: alice.id)
        try observer.addProducer(producerId: bob.id)
        var events = observer.events.makeAsyncIterator()
        await worker.sync()
        let sender = TestSocket()
        let port = t.tuple.localPort
        // Alice talks (-20 dBov), Bob is quiet (-100 dBov).
        func round(aliceLevel: UInt8, bobLevel: UInt8, seq: UInt16) async throws {
            helper.talk(sender, port: port, ssrc: 11, level: aliceLevel, packets: 5, seq: seq)
            helper.talk(sender, port: port, ssrc: 12, level: bobLevel, packets: 5, seq: seq)
            try await Task.sleep(for: .milliseconds(100))
        }
        var seq: UInt16 = 0
        for _ in 0..<4 { try await round(aliceLevel: 20, bobLevel: 100, seq: seq); seq &+= 5 }
        var first: Producer?
        while first == nil, let e = await events.next() { if case .dominantSpeaker(let p) = e { first = p } }
        #expect(first?.id == alice.id)
        // Bob takes over once Alice stops and he talks.
        for _ in 0..<8 { try await round(aliceLevel: 127, bobLevel: 15, seq: seq); seq &+= 5 }
        var second: Producer?
        while second == nil, let e = await events.next() { if case .dominantSpeaker(let p) = e { second = p } }
        #expect(second?.id == bob.id)
        #expect(observer.dominantSpeaker === bob)
        // Alice talking over Bob for a moment does not take the floor.
        for _ in 0..<3 { try await round(aliceLevel: 20, bobLevel: 15, seq: seq); seq &+= 5 }
        #expect(observer.dominantSpeaker === bob)
        router.close()
        var rest: [ActiveSpeakerObserverEvent] = []
        while let e = await events.next() { rest.append(e) }
        #expect(names(rest).last == "routerClose")
        worker.close()
    }
}
