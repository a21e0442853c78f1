import Testing
import RingSFUTestSupport
import RingSFUCShims
@testable import RingSFU
@testable import RingSFUForwarder

/// Media through the public API: real sockets on loopback, a real ring.
@Suite("Forwarding") @RingSFUActor
struct ForwardingTests {
    struct Room {
        let worker: Worker
        let router: Router
        let ingest: PlainTransport
        let producer: Producer
        let sender: TestSocket
    }

    func makeRoom(kind: MediaKind = .video) async throws -> Room {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let exts = [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 9),
                    RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:toffset", id: 3)]
        let params = kind == .video ? videoParams(ssrc: 4444, pt: 96, exts: exts) : audioParams(ssrc: 4444)
        let producer = try ingest.produce(ProducerOptions(kind: kind, rtpParameters: params))
        return Room(worker: worker, router: router, ingest: ingest, producer: producer, sender: TestSocket())
    }

    func addSink(_ room: Room, paused: Bool = false) throws -> (Consumer, TestSocket) {
        let sink = TestSocket()
        let t = try room.router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try t.connect(ip: "127.0.0.1", port: Int(sink.port))
        let c = try t.consume(ConsumerOptions(producerId: room.producer.id, rtpCapabilities: room.router.rtpCapabilities, paused: paused))
        return (c, sink)
    }

    func send(_ room: Room, seq: UInt16, key: Bool = false, ts: UInt32 = 9000) {
        room.sender.send(makeRtp(pt: 96, seq: seq, ts: ts, ssrc: 4444, payload: vp8Payload(keyFrame: key), extensions: [(9, [0x31]), (3, [0, 0, 1])]), to: UInt16(room.ingest.tuple.localPort))
    }

    func header(_ p: [UInt8]) throws -> RtpHeader {
        try p.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
    }

    @Test func producerToThreeConsumers() async throws {
        let room = try await makeRoom()
        var sinks: [(Consumer, TestSocket)] = []
        for _ in 0..<3 { sinks.append(try addSink(room)) }
        await room.worker.sync()
        let tupleEvents = room.ingest.events
        for i in 0..<50 { send(room, seq: 1000 &+ UInt16(i), key: i == 0, ts: 9000 + UInt32(i / 5) * 3000) }
        let vp8Pt = room.router.rtpCapabilities.codecs!.first { $0.mimeType == "video/VP8" }!.preferredPayloadType!
        for (consumer, sink) in sinks {
            let got = await sink.receiveAll(50)
            #expect(got.count == 50)
            #expect(await sink.receive(timeoutMs: 100) == nil, "no duplicates")
            let ssrc = consumer.rtpParameters.encodings![0].ssrc!
            var lastSeq: UInt16? = nil
            for pkt in got {
                let h = try header(pkt)
                #expect(h.ssrc == ssrc)
                #expect(Int(h.payloadType) == vp8Pt)
                if let l = lastSeq { #expect(h.sequenceNumber == l &+ 1) }
                lastSeq = h.sequenceNumber
                // Extension ids are the router's: mid 1, toffset 12, and the
                // transport-wide number 5 (added: the publisher sent none).
                var ids: [UInt8] = []
                try pkt.withUnsafeBytes { raw in try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, _, _ in ids.append(id) } }
                #expect(Set(ids) == [1, 12, 5])
            }
            // Payload bytes are untouched.
            #expect(Array(got[0].suffix(98)) == Array(vp8Payload(keyFrame: true).suffix(98)))
        }
        // comedia learnt the sender's address (the event hops to the control plane).
        await room.worker.sync()
        try await Task.sleep(for: .milliseconds(50))
        #expect(room.ingest.tuple.remotePort == Int(room.sender.port))
        room.worker.close()
        let tupleNames = names(await collect(tupleEvents))
        #expect(tupleNames == ["tuple", "routerClose"])
        let stats = try? await room.producer.getStats()
        #expect(stats == nil) // closed
    }

    @Test func videoConsumerStartsOnKeyFrame() async throws {
        let room = try await makeRoom()
        let (_, sink) = try addSink(room)
        await room.worker.sync()
        for i in 0..<5 { send(room, seq: UInt16(10 + i)) }
        #expect(await sink.receive(timeoutMs: 150) == nil)
        send(room, seq: 15, key: true)
        send(room, seq: 16)
        let got = await sink.receiveAll(2)
        #expect(got.count == 2)
        room.worker.close()
    }

    @Test func pauseResumeKeepsSequenceContinuous() async throws {
        let room = try await makeRoom()
        let (consumer, sink) = try addSink(room)
        await room.worker.sync()
        var seq: UInt16 = 65530 // cross the wrap too
        var received: [UInt16] = []
        func burst(_ n: Int, keyFirst: Bool) async throws {
            for i in 0..<n { send(room, seq: seq, key: keyFirst && i == 0); seq &+= 1 }
            received += try await sink.receiveAll(n, timeoutMs: 1000).map { try header($0).sequenceNumber }
        }
        try await burst(10, keyFirst: true)
        try consumer.pause()
        await room.worker.sync()
        for _ in 0..<7 { send(room, seq: seq); seq &+= 1 }  // dropped while paused
        #expect(await sink.receive(timeoutMs: 100) == nil)
        try consumer.resume()
        await room.worker.sync()
        send(room, seq: seq); seq &+= 1 // not a key frame: still waiting
        try await burst(10, keyFirst: true)
        try room.producer.pause()
        await room.worker.sync()
        for _ in 0..<5 { send(room, seq: seq); seq &+= 1 }
        try room.producer.resume()
        await room.worker.sync()
        try await burst(10, keyFirst: true)
        #expect(received.count == 30)
        for i in 1..<received.count { #expect(received[i] == received[i - 1] &+ 1, "gap at \(i)") }
        room.worker.close()
    }

    @Test func malformedDatagramsAreCountedAndDropped() async throws {
        let room = try await makeRoom(kind: .audio)
        let (_, sink) = try addSink(room)
        await room.worker.sync()
        let port = UInt16(room.ingest.tuple.localPort)
        let good = { (seq: UInt16) in makeRtp(pt: 111, seq: seq, ssrc: 4444) }
        room.sender.send(good(1), to: port) // comedia learns the tuple from a good packet
        #expect(await sink.receiveAll(1).count == 1)
        var bad: [[UInt8]] = []
        bad.append([])                                         // empty
        bad.append([0x80])                                     // 1 byte
        bad.append([0x40] + Array(good(2).dropFirst()))        // version 1
        bad.append([0x8F] + Array(good(3).dropFirst()).prefix(20)) // 15 CSRCs, too short
        var ext = good(4); ext[0] |= 0x10                      // extension flag, bogus length
        ext.replaceSubrange(12..<16, with: [0xBE, 0xDE, 0xFF, 0xFF]); bad.append(ext)
        var pad = good(5); pad[0] |= 0x20; pad[pad.count - 1] = 0xFF; bad.append(pad) // padding > payload
        for b in bad { room.sender.send(b, to: port) }
        for i in 0..<20 { room.sender.send(good(10 + UInt16(i)), to: port) }
        #expect(await sink.receiveAll(20).count == 20)
        let usage = await room.worker.getResourceUsage()
        // Empty, 1-byte and version-1 datagrams fall outside RFC 7983's RTP
        // range; the other three parse as RTP and fail the bounds checks.
        #expect(usage.dropNotRtp == 3)
        #expect(usage.dropMalformed == 3)
        room.worker.close()
    }

    @Test func unknownSsrcAndStrangersAreDropped() async throws {
        let room = try await makeRoom(kind: .audio)
        let (_, sink) = try addSink(room)
        await room.worker.sync()
        let port = UInt16(room.ingest.tuple.localPort)
        room.sender.send(makeRtp(pt: 111, seq: 1, ssrc: 4444), to: port)
        room.sender.send(makeRtp(pt: 111, seq: 2, ssrc: 5555), to: port)
        let stranger = TestSocket()
        stranger.send(makeRtp(pt: 111, seq: 3, ssrc: 4444), to: port)
        #expect(await sink.receiveAll(2, timeoutMs: 300).count == 1)
        let usage = await room.worker.getResourceUsage()
        #expect(usage.dropUnknownSsrc == 1)
        #expect(usage.dropUnknownSource == 1)
        room.worker.close()
    }

    @Test func floodEmptiesReceivePoolThenRecovers() async throws {
        // A small receive pool and a flood while the worker is busy.
        let worker = try await Worker.create(WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 16, maxProducers: 16, maxConsumers: 64, receiveBuffers: 2))
        let router = try worker.createRouter(mediaCodecs: [opus])
        // A tiny socket buffer as well, so the kernel drops what the worker
        // cannot take, and reports it.
        var small = loopback
        small.recvBufferSize = 4096
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: small, comedia: true))
        _ = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 4444)))
        let sink = TestSocket()
        let producer = router.producers.values.first!
        // Ten consumers make each packet cost ten sends once it is taken.
        for _ in 0..<10 {
            let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
            try t.connect(ip: "127.0.0.1", port: Int(sink.port))
            _ = try t.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        }
        await worker.sync()
        // The worker is held still until a burst far larger than its 2
        // receive buffers and the socket's queue has been sent: the kernel
        // has to drop, whatever the machine's load (a free-running flood,
        // or a timed stall, may not outrun the worker). Kept small so that
        // it never fills the kernel's loopback backlog that parallel tests
        // share.
        let port = UInt16(ingest.tuple.localPort)
        let sender = TestSocket()
        let payload = makeRtp(pt: 111, seq: 1, ssrc: 4444, payload: Array(repeating: 1, count: 1000))
        let hold = await worker.holdForwarder()
        for _ in 0..<200 { sender.send(payload, to: port) }
        hold.release()
        await worker.sync()
        while await sink.receive(timeoutMs: 50) != nil {}
        let usage = await worker.getResourceUsage()
        // The worker is alive and forwards again.
        // Paced: the tiny socket buffer holds only a few datagrams.
        for i in 0..<10 {
            sender.send(makeRtp(pt: 111, seq: UInt16(100 + i), ssrc: 4444), to: port)
            try await Task.sleep(for: .milliseconds(3))
        }
        #expect(await sink.receiveAll(100).count == 100)
        let after = await worker.getResourceUsage()
        // Drops are counted: the socket queue holds a few datagrams of the
        // 200, the kernel reports the rest with the next datagram received.
        #expect(after.dropSocketOverflow > 0)
        #expect(usage.packetsIn > 0)
        worker.close()
    }
}

@Suite("PlainTransport options") @RingSFUActor
struct PlainTransportOptionTests {
    @Test func separateRtcpPortAndAnnouncedAddress() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let t = try router.createPlainTransport(PlainTransportOptions(
            listenInfo: TransportListenInfo(protocol: "udp", ip: "127.0.0.1", announcedAddress: "203.0.113.7"),
            rtcpMux: false, comedia: true))
        #expect(t.tuple.localAddress == "203.0.113.7")
        let rtcp = try #require(t.rtcpTuple)
        #expect(rtcp.localPort != t.tuple.localPort)
        let events = t.events
        _ = try t.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 77)))
        await worker.sync()
        // RTP and RTCP from their own ports: comedia learns both tuples.
        let rtpSender = TestSocket(), rtcpSender = TestSocket()
        rtpSender.send(makeRtp(pt: 111, seq: 1, ssrc: 77), to: UInt16(t.tuple.localPort))
        rtcpSender.send([0x80, 201, 0, 1, 0, 0, 0, 77], to: UInt16(rtcp.localPort)) // RR, no blocks
        // Both tuples are announced (the order depends on arrival).
        var iterator = events.makeAsyncIterator()
        var seen: [String] = []
        while seen.count < 2, let e = await iterator.next() { seen += names([e]) }
        #expect(Set(seen) == ["tuple", "rtcpTuple"])
        #expect(t.tuple.remotePort == Int(rtpSender.port))
        #expect(t.rtcpTuple?.remotePort == Int(rtcpSender.port))
        let usage = await worker.getResourceUsage()
        #expect(usage.rtcpIn == 1 && usage.sockets == 2)
        worker.close()
        for port in [t.tuple.localPort, rtcp.localPort] { #expect(await portIsFree(port)) }
    }

    @Test func connectValidation() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let comedia = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        #expect(throws: SFUError.invalidState("cannot call connect() with ip/port when comedia mode is enabled")) { try comedia.connect(ip: "127.0.0.1", port: 5000) }
        let split = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, rtcpMux: false))
        #expect(throws: SFUError.self) { try split.connect(ip: "127.0.0.1", port: 5000) } // rtcpPort missing
        #expect(throws: SFUError.self) { try split.connect(ip: "not-an-ip", port: 5000, rtcpPort: 5001) }
        #expect(throws: SFUError.self) { try split.connect(ip: "127.0.0.1", port: 0, rtcpPort: 5001) }
        try split.connect(ip: "127.0.0.1", port: 5000, rtcpPort: 5001)
        #expect(split.tuple.remotePort == 5000 && split.rtcpTuple?.remotePort == 5001)
        #expect(throws: SFUError.invalidState("connect() already called")) { try split.connect(ip: "127.0.0.1", port: 5000, rtcpPort: 5001) }
        // Bad listen infos are TypeErrors naming the field.
        #expect(throws: SFUError.invalidArgument("invalid listenInfo.ip \"300.1.1.1\"")) {
            _ = try router.createPlainTransport(PlainTransportOptions(listenInfo: TransportListenInfo(ip: "300.1.1.1")))
        }
        #expect(throws: SFUError.self) {
            _ = try router.createPlainTransport(PlainTransportOptions(listenInfo: TransportListenInfo(protocol: "tcp", ip: "127.0.0.1")))
        }
        // A fixed port that is taken fails cleanly; IPv6 loopback works.
        let taken = comedia.tuple.localPort
        #expect(throws: SFUError.self) {
            _ = try router.createPlainTransport(PlainTransportOptions(listenInfo: TransportListenInfo(ip: "127.0.0.1", port: taken)))
        }
        let v6 = try router.createPlainTransport(PlainTransportOptions(listenInfo: TransportListenInfo(ip: "::1")))
        #expect(v6.tuple.localAddress == "::1")
        worker.close()
    }
}

@Suite("Hostile input") @RingSFUActor
struct HostileInputTests {
    /// Random datagrams (many shaped like RTP, some with the producer's SSRC
    /// and extension blocks) never stop the worker; every one is accounted
    /// for, and good packets keep flowing.
    @Test func randomDatagramsAreCountedAndDropped() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let producer = try ingest.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 4444, exts: [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 1)])))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        let sender = TestSocket()
        let port = UInt16(ingest.tuple.localPort)
        sender.send(makeRtp(pt: 96, seq: 1, ssrc: 4444, payload: vp8Payload(keyFrame: true)), to: port)
        #expect(await sink.receiveAll(1).count == 1)
        var rng = SystemRandomNumberGenerator()
        let count = 3000
        for i in 0..<count {
            var p = (0..<Int.random(in: 0...1400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if p.count >= 12, i % 2 == 0 {
                // RTP-shaped: version 2, our SSRC, random flags and lengths.
                p[0] = 0x80 | (p[0] & 0x3F)
                p[1] = (p[1] & 0x80) | 96
                p[8] = 0; p[9] = 0; p[10] = 0x11; p[11] = 0x5C
            }
            sender.send(p, to: port)
            if i % 200 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        while await sink.receive(timeoutMs: 50) != nil {}
        let usage = await worker.getResourceUsage()
        #expect(usage.packetsIn == UInt64(count + 1) - usage.dropSocketOverflow)
        // Still forwarding.
        sender.send(makeRtp(pt: 96, seq: 60000, ssrc: 4444, payload: vp8Payload(keyFrame: true)), to: port)
        #expect(await sink.receiveAll(1).count == 1)
        worker.close()
        await worker.waitForShutdown()
        #expect(!worker.died)
    }
}

@Suite("Stream identification") @RingSFUActor
struct StreamIdentificationTests {
    /// Producers signalled without SSRCs are found by MID, then by RID; the
    /// SSRC is learnt from the first packet (mediasoup's RtpListener order).
    @Test(arguments: ["mid", "rid"])
    func learnsSsrcFromMidOrRid(by: String) async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        var params = RtpParameters(codecs: [RtpCodecParameters(mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2)],
                                   headerExtensions: [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 4),
                                                      RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", id: 5)],
                                   encodings: [RtpEncodingParameters()], rtcp: RtcpParameters(cname: "x"))
        if by == "mid" { params.mid = "a0" } else { params.encodings = [RtpEncodingParameters(rid: "hi")] }
        let producer = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: params))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()
        let sender = TestSocket()
        let ext: (UInt8, [UInt8]) = by == "mid" ? (4, Array("a0".utf8)) : (5, Array("hi".utf8))
        // A stranger's value is not learnt.
        sender.send(makeRtp(pt: 111, seq: 1, ssrc: 999, extensions: [by == "mid" ? (4, Array("zz".utf8)) : (5, Array("lo".utf8))]), to: UInt16(ingest.tuple.localPort))
        sender.send(makeRtp(pt: 111, seq: 2, ssrc: 4242, extensions: [ext]), to: UInt16(ingest.tuple.localPort))
        // Later packets match by the learnt SSRC, without the extension.
        sender.send(makeRtp(pt: 111, seq: 3, ssrc: 4242), to: UInt16(ingest.tuple.localPort))
        #expect(await sink.receiveAll(2).count == 2)
        let usage = await worker.getResourceUsage()
        #expect(usage.dropUnknownSsrc == 1)
        producer.close()
        await worker.sync()
        let after = await worker.getResourceUsage()
        #expect(after.ssrcEntries == 0)
        #expect(throws: SFUError.self) {
            _ = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: RtpParameters(codecs: params.codecs, encodings: [RtpEncodingParameters()])))
        }
        worker.close()
    }
}

@Suite("MID rewriting") @RingSFUActor
struct MidRewriteTests {
    /// A consumer's MID replaces the producer's, whether it is shorter,
    /// the same length or longer than the element in the packet, in the
    /// one-byte and the two-byte extension forms.
    @Test(arguments: ["7", "ab", "12345", "consumer-mid-16c"], [false, true])
    func consumerMidReplacesProducerMid(mid: String, twoByte: Bool) async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        var params = audioParams(ssrc: 31)
        params.mid = "xy"
        params.headerExtensions = [RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:sdes:mid", id: 3),
                                   RtpHeaderExtensionParameters(uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level", id: 4)]
        let producer = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: params))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        let consumer = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities, mid: mid))
        #expect(consumer.rtpParameters.mid == mid)
        await worker.sync()
        let payload = Array(0..<UInt8(100))
        var packet = makeRtp(pt: 111, seq: 9, ssrc: 31, payload: payload, extensions: [(3, Array("xy".utf8)), (4, [0x90])])
        if twoByte {
            // Same elements, two-byte headers (RFC 8285 profile 0x100x).
            let body: [UInt8] = [3, 2] + Array("xy".utf8) + [4, 1, 0x90] + [0]
            packet = Array(packet[0..<12]) + [0x10, 0x00, 0x00, UInt8(body.count / 4)] + body + payload
        }
        TestSocket().send(packet, to: UInt16(ingest.tuple.localPort))
        let got = try #require(await sink.receiveAll(1).first)
        let h = try got.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
        var values: [UInt8: [UInt8]] = [:]
        try got.withUnsafeBytes { raw in
            try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, off, len in values[id] = Array(raw[off..<off + len]) }
        }
        #expect(values[1] == Array(mid.utf8), "MID (router id 1)")
        #expect(values[10] == [0x90], "audio level kept (router id 10)")
        #expect(Array(got[h.payloadOffset..<(h.payloadOffset + h.payloadLength)]) == payload)
        worker.close()
    }
}
