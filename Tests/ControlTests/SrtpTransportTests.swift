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
        let got = sink.receiveAll(10)
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
}
