import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// PlainTransports with enableSrtp: an SRTP publisher and an SRTP
/// subscriber, each with its own keys, on real sockets.
@Suite("SRTP on PlainTransport") @RingSFUActor
struct SrtpTransportTests {
    @Test(arguments: [SrtpCryptoSuite.aesCm128HmacSha1_80, .aeadAes128Gcm, .aeadAes256Gcm, .aesCm128HmacSha1_32])
    func srtpInAndOut(suite: SrtpCryptoSuite) async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true, enableSrtp: true, srtpCryptoSuite: suite.rawValue))
        #expect(ingest.srtpParameters?.cryptoSuite == suite.rawValue)
        // The publisher's own key: given to the SFU with connect().
        let (publisherParams, publisherKey) = SrtpParameters.random(suite)
        try ingest.connect(srtpParameters: publisherParams)
        _ = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 8080)))

        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, enableSrtp: true, srtpCryptoSuite: suite.rawValue))
        let (subscriberParams, _) = SrtpParameters.random(suite)
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port), srtpParameters: subscriberParams)
        let consumer = try egress.consume(ConsumerOptions(producerId: router.producers.values.first!.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()

        let publisher = try SrtpSession(suite: suite, key: publisherKey.key, direction: .outbound)
        let sfuKey = try egress.srtpParameters!.key(field: "test")
        let subscriber = try SrtpSession(suite: suite, key: sfuKey.key, direction: .inbound)
        let sender = TestSocket()
        for i in 0..<10 {
            var buf = makeRtp(pt: 111, seq: UInt16(i), ssrc: 8080, payload: Array(repeating: UInt8(i), count: 160)) + Array(repeating: 0, count: 64)
            var len = buf.count - 64
            try buf.withUnsafeMutableBytes { raw in try publisher.protect(raw.baseAddress!, length: &len, capacity: raw.count) }
            sender.send(Array(buf[0..<len]), to: UInt16(ingest.tuple.localPort))
        }
        // A forged packet and a replay are dropped and counted.
        sender.send(makeRtp(pt: 111, seq: 50, ssrc: 8080) + Array(repeating: 0xEE, count: 10), to: UInt16(ingest.tuple.localPort))
        let got = await sink.receiveAll(10)
        #expect(got.count == 10)
        for (i, p) in got.enumerated() {
            var buf = p
            var len = p.count
            try buf.withUnsafeMutableBytes { raw in try subscriber.unprotect(raw.baseAddress!, length: &len) }
            let h = try buf.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: len) }
            #expect(h.ssrc == consumer.rtpParameters.encodings![0].ssrc!)
            #expect(buf[h.payloadOffset] == UInt8(i))
        }
        let usage = await worker.getResourceUsage()
        #expect(usage.dropSrtpAuth + usage.dropSrtpOther >= 1)
        worker.close()
    }

    @Test func srtpParameterValidation() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        #expect(throws: SFUError.self) {
            _ = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, enableSrtp: true, srtpCryptoSuite: "NOPE"))
        }
        let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, enableSrtp: true))
        #expect(t.srtpParameters?.cryptoSuite == "AES_CM_128_HMAC_SHA1_80")
        #expect(throws: SFUError.invalidArgument("missing srtpParameters (SRTP enabled)")) { try t.connect(ip: "127.0.0.1", port: 5000) }
        #expect(throws: SFUError.self) { try t.connect(ip: "127.0.0.1", port: 5000, srtpParameters: SrtpParameters(cryptoSuite: "AES_CM_128_HMAC_SHA1_80", keyBase64: "c2hvcnQ=")) }
        let plain = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        #expect(throws: SFUError.self) { try plain.connect(ip: "127.0.0.1", port: 5000, srtpParameters: t.srtpParameters) }
        worker.close()
    }

    /// SRTP fails closed: when the forwarder cannot build a session from the
    /// keys (here a send key libsrtp refuses, a receive key never given),
    /// not one plain packet leaves and nothing plain is taken in.
    @Test func srtpFailsClosed() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus])
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true, enableSrtp: true))
        _ = try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 8080)))
        let sink = TestSocket()
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        try egress.connect(ip: "127.0.0.1", port: Int(sink.port))
        _ = try egress.consume(ConsumerOptions(producerId: router.producers.values.first!.id, rtpCapabilities: router.rtpCapabilities))
        // The subscriber's transport is switched to SRTP with a key of the
        // wrong length: libsrtp refuses it.
        worker.forwarder.send(.setTransportSrtp(handle: egress.handle, send: SrtpKey(suite: .aesCm128HmacSha1_80, key: [1, 2, 3]), receive: nil))
        await worker.sync()

        // The publisher sends plain RTP before connecting its key: dropped.
        let sender = TestSocket()
        for i in 0..<5 { sender.send(makeRtp(pt: 111, seq: UInt16(i), ssrc: 8080, payload: Array(repeating: 1, count: 40)), to: UInt16(ingest.tuple.localPort)) }
        #expect(await sink.receive(timeoutMs: 200) == nil)
        var usage = await worker.getResourceUsage()
        #expect(usage.dropNotReady >= 5)

        // With its key the publisher gets through, but the refused send key
        // means the subscriber gets nothing, not plain RTP.
        let (publisherParams, publisherKey) = SrtpParameters.random(.aesCm128HmacSha1_80)
        try ingest.connect(srtpParameters: publisherParams)
        await worker.sync()
        let publisher = try SrtpSession(suite: .aesCm128HmacSha1_80, key: publisherKey.key, direction: .outbound)
        for i in 10..<15 {
            var buf = makeRtp(pt: 111, seq: UInt16(i), ssrc: 8080, payload: Array(repeating: 2, count: 40)) + Array(repeating: 0, count: 64)
            var len = buf.count - 64
            try buf.withUnsafeMutableBytes { raw in try publisher.protect(raw.baseAddress!, length: &len, capacity: raw.count) }
            sender.send(Array(buf[0..<len]), to: UInt16(ingest.tuple.localPort))
        }
        #expect(await sink.receive(timeoutMs: 300) == nil, "no plain RTP on a transport whose SRTP failed")
        usage = await worker.getResourceUsage()
        #expect(usage.dropSrtpUnavailable >= 5)
        worker.close()
    }
}
