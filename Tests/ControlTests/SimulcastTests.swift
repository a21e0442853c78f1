import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// Simulcast over real UDP: a producer with three encodings (by SSRC or by
/// RID), a simulcast consumer that forwards one layer at a time (the
/// highest active one up to its preferred layer), switches on key frames
/// with continuous sequence numbers and advancing timestamps, asks the new
/// layer for a key frame, and falls back when a layer stops; pipeToRouter
/// carries every layer.
@Suite("Simulcast") @RingSFUActor
struct SimulcastTests {
    static let ssrcs: [UInt32] = [100, 200, 300]

    /// Payload byte 2 tells the test which layer a packet came from.
    func packet(layer: Int, seq: UInt16, key: Bool, rid: String? = nil, ssrc: UInt32? = nil) -> [UInt8] {
        var payload = vp8Payload(keyFrame: key, size: 40)
        payload[2] = UInt8(layer)
        let exts: [(UInt8, [UInt8])] = rid.map { [(UInt8(4), Array($0.utf8))] } ?? []
        let id: UInt8 = 4
        return makeRtp(pt: 96, seq: seq, ts: UInt32(seq) &* 3000, ssrc: ssrc ?? Self.ssrcs[layer], payload: payload, extensions: exts.map { (id, $0.1) })
    }

    func parameters(rids: Bool) -> RtpParameters {
        RtpParameters(mid: rids ? "v" : nil,
                      codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000, rtcpFeedback: [RtcpFeedback(type: "nack", parameter: "pli")])],
                      headerExtensions: rids ? [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", id: 4)] : [],
                      encodings: (0..<3).map { rids ? RtpEncodingParameters(rid: "r\($0)") : RtpEncodingParameters(ssrc: Self.ssrcs[$0]) },
                      rtcp: RtcpParameters(cname: "s"))
    }

    /// (layer, sequence, timestamp) of what the sink receives.
    func received(_ sink: TestSocket, _ count: Int) async throws -> [(layer: Int, seq: UInt16, ts: UInt32)] {
        try await sink.receiveAll(count).map { d in
            let h = try d.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
            return (Int(d[h.payloadOffset + 2]), h.sequenceNumber, h.timestamp)
        }
    }

    func plis(_ s: TestSocket, ms: Int) async -> Set<UInt32> {
        var out = Set<UInt32>()
        let deadline = Date().addingTimeInterval(Double(ms) / 1000)
        while Date() < deadline {
            await Task.yield()
            if let d = await s.receive(timeoutMs: 10) { for r in KeyFrameRequestTests.keyFrameRequests(d) { out.insert(r.ssrc) } }
        }
        // What arrived while this test was not scheduled counts too.
        while let d = await s.receive(timeoutMs: 1) { for r in KeyFrameRequestTests.keyFrameRequests(d) { out.insert(r.ssrc) } }
        return out
    }

    @Test func oneLayerAtATimeWithSwitchesAndFallback() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: parameters(rids: false)))
        #expect(producer.type == .simulcast)
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        #expect(consumer.type == .simulcast)
        #expect(consumer.rtpParameters.encodings?.count == 1 && consumer.rtpParameters.encodings?[0].scalabilityMode == "L3T1")
        #expect(consumer.preferredLayers?.spatialLayer == 2)
        let events = consumer.events
        await worker.sync()
        let feeder = TestSocket()
        feeder.acceptsRtcp = true
        let port = UInt16(ingress.tuple.localPort)
        var seqs: [UInt16] = [1000, 5000, 9000]
        func send(_ layer: Int, key: Bool = false) {
            feeder.send(packet(layer: layer, seq: seqs[layer], key: key), to: port)
            seqs[layer] &+= 1
        }
        // All three layers flow; only the top one reaches the consumer.
        for layer in 0..<3 { send(layer, key: true) }
        for _ in 0..<3 { for layer in 0..<3 { send(layer) } }
        let first = try await received(sink, 4)
        #expect(first.map(\.layer) == [2, 2, 2, 2])
        #expect(await sink.receive(timeoutMs: 100) == nil)
        let ssrc = try #require(consumer.rtpParameters.encodings?.first?.ssrc)
        let layerStats = try await producer.getStats()
        #expect(layerStats.map(\.ssrc) == Self.ssrcs)
        #expect(layerStats.map(\.packetCount) == [4, 4, 4])
        for _ in 0..<50 where consumer.currentLayers == nil { try await Task.sleep(for: .milliseconds(10)) }
        #expect(consumer.currentLayers?.spatialLayer == 2)

        // Prefer layer 0: it is asked for a key frame and taken at the next one.
        _ = await plis(feeder, ms: 50)
        try consumer.setPreferredLayers(ConsumerLayers(spatialLayer: 0))
        #expect(await plis(feeder, ms: 300).contains(100))
        send(2)
        send(0)            // not a key frame: still layer 2
        send(0, key: true) // the switch
        send(0)
        let switched = try await received(sink, 3)
        #expect(switched.map(\.layer) == [2, 0, 0])
        if switched.count == 3 {
            #expect(switched[1].seq == switched[0].seq &+ 1 && switched[2].seq == switched[1].seq &+ 1, "continuous numbering")
            #expect(switched[1].ts &- switched[0].ts > 0 && switched[1].ts &- switched[0].ts < 90_000, "timestamps advance")
        }
        send(1, key: true)
        send(2, key: true)
        #expect(await sink.receive(timeoutMs: 100) == nil, "other layers are not forwarded")

        // Back to the top, but layer 2 has stopped: the consumer falls back to layer 1.
        try consumer.setPreferredLayers(ConsumerLayers(spatialLayer: 2))
        for i in 0..<60 {
            send(0)
            send(1, key: i % 10 == 9)
            try await Task.sleep(for: .milliseconds(50))
            if consumer.currentLayers?.spatialLayer == 1 { break }
        }
        #expect(consumer.currentLayers?.spatialLayer == 1)
        #expect(throws: SFUError.self) { try consumer.setPreferredLayers(ConsumerLayers(spatialLayer: 3)) }
        // Every packet out carried the consumer's one SSRC.
        send(1)
        while let d = await sink.receive(timeoutMs: 100) {
            let h = try d.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
            #expect(h.ssrc == ssrc)
        }
        worker.close()
        var layers: [Int?] = []
        for e in await collect(events) { if case .layersChange(let l) = e { layers.append(l?.spatialLayer) } }
        #expect(layers == [2, 0, 1])
    }

    /// Each layer numbers its VP8 pictures and TL0 frames on its own; what
    /// the consumer sends is one stream: the switching key frame continues
    /// right after the last picture of the old layer (a browser freezes
    /// otherwise, its frame reference finder taking the new numbers as old).
    @Test func vp8DescriptorsContinueAcrossSwitches() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: parameters(rids: false)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        let feeder = TestSocket()
        let port = UInt16(ingress.tuple.localPort)
        var seqs: [UInt16] = [1000, 5000, 9000]
        var pictures: [UInt16] = [20000, 300, 32760]
        var tl0s: [UInt8] = [7, 250, 90]
        // One packet per picture; TL0 every other picture.
        func send(_ layer: Int, key: Bool = false) {
            let d = vp8Descriptor(pictureId: pictures[layer], tl0: tl0s[layer], tid: pictures[layer] % 2 == 0 ? 0 : 1, key: key)
            feeder.send(makeRtp(pt: 96, seq: seqs[layer], ts: UInt32(seqs[layer]) &* 3000, ssrc: Self.ssrcs[layer], payload: d), to: port)
            seqs[layer] &+= 1
            pictures[layer] = (pictures[layer] + 1) & 0x7FFF
            if pictures[layer] % 2 == 0 { tl0s[layer] &+= 1 }
        }
        func numbers(_ count: Int) async throws -> [(UInt16, UInt8)] {
            try await sink.receiveAll(count).map { d in
                let h = try d.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
                return vp8Numbers(Array(d[h.payloadOffset...]))
            }
        }
        for layer in 0..<3 { send(layer, key: true) }
        for _ in 0..<3 { for layer in 0..<3 { send(layer) } }
        let top = try await numbers(4)
        #expect(top.map(\.0) == [32760, 32761, 32762, 32763])
        for target in [0, 1, 2, 0] {
            try consumer.setPreferredLayers(ConsumerLayers(spatialLayer: target))
            await worker.sync()
            send(target, key: true)
            for _ in 0..<3 { for layer in 0..<3 { send(layer) } }
        }
        let rest = try await numbers(16)
        #expect(rest.count == 16)
        var all = top + rest
        // Picture ids: one after another (15 bits); TL0PICIDX never goes back.
        for i in 1..<all.count {
            #expect(all[i].0 == (all[i - 1].0 + 1) & 0x7FFF, "picture \(i): \(all.map(\.0))")
            let step = all[i].1 &- all[i - 1].1
            #expect(step <= 1, "TL0PICIDX \(i): \(all.map(\.1))")
        }
        all.removeAll()
        worker.close()
    }

    /// Encodings signalled by RID only: SSRCs are learnt per layer from the
    /// RID header extension, as mediasoup-client's simulcast sends them.
    @Test func ridEncodingsAreLearnt() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: parameters(rids: true)))
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities, preferredLayers: ConsumerLayers(spatialLayer: 1)))
        await worker.sync()
        let feeder = TestSocket()
        for round in 0..<3 {
            for layer in 0..<3 {
                feeder.send(packet(layer: layer, seq: UInt16(100 * layer + round), key: round == 0, rid: "r\(layer)", ssrc: 7000 + UInt32(layer)), to: UInt16(ingress.tuple.localPort))
            }
        }
        #expect(try await received(sink, 3).map(\.layer) == [1, 1, 1])
        #expect(await sink.receive(timeoutMs: 100) == nil)
        let stats = try await producer.getStats()
        #expect(stats.map(\.ssrc) == [7000, 7001, 7002] && stats.map(\.rid) == ["r0", "r1", "r2"])
        worker.close()
    }

    /// pipeToRouter carries every layer to the other worker, where a
    /// simulcast consumer picks its layer.
    @Test func pipeToRouterCarriesEveryLayer() async throws {
        let w1 = try await testWorker(), w2 = try await testWorker()
        let r1 = try w1.createRouter(mediaCodecs: [vp8]), r2 = try w2.createRouter(mediaCodecs: [vp8])
        let ingress = try r1.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: parameters(rids: false)))
        let piped = try r1.pipeToRouter(producerId: producer.id, router: r2)
        #expect(piped.pipeConsumer.rtpParameters.encodings?.count == 3)
        #expect(piped.pipeProducer.type == .simulcast)
        let egress = try r2.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let sink = TestSocket()
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: r2.rtpCapabilities, preferredLayers: ConsumerLayers(spatialLayer: 1)))
        await w1.sync(); await w2.sync()
        let feeder = TestSocket()
        for round in 0..<3 {
            for layer in 0..<3 { feeder.send(packet(layer: layer, seq: UInt16(100 * layer + round), key: round == 0), to: UInt16(ingress.tuple.localPort)) }
        }
        #expect(try await received(sink, 3).map(\.layer) == [1, 1, 1])
        w1.close(); w2.close()
    }
}
