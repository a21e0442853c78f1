import Testing
import RingSFU

/// The README's library example, as written there (awaited calls from
/// outside the actor), run to its end: the consumer's events finish after
/// `producerClose`. If this stops compiling, the README is wrong too.
@Suite("README example")
struct ReadmeExampleTests {
    @Test func theLibraryExampleRuns() async throws {
        let worker = try await Worker.create(WorkerSettings(rtcMinPort: 40000, rtcMaxPort: 49999))
        let router = try await worker.createRouter(mediaCodecs: [
            RtpCodecCapability(kind: .audio, mimeType: "audio/opus", clockRate: 48000, channels: 2),
            RtpCodecCapability(kind: .video, mimeType: "video/VP8", clockRate: 90000),
        ])
        let ingest = try await router.createPlainTransport(
            PlainTransportOptions(listenInfo: TransportListenInfo(ip: "127.0.0.1"), comedia: true))
        // What the sender puts on the wire: VP8 as payload type 96 on SSRC 1111.
        let params = RtpParameters(
            codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000)],
            encodings: [RtpEncodingParameters(ssrc: 1111)], rtcp: RtcpParameters(cname: "camera"))
        let producer = try await ingest.produce(ProducerOptions(kind: .video, rtpParameters: params))
        let egress = try await router.createPlainTransport(PlainTransportOptions(listenInfo: TransportListenInfo(ip: "127.0.0.1")))
        try await egress.connect(ip: "127.0.0.1", port: 5004)
        let consumer = try await egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        let events = await consumer.events
        await producer.close()
        var seen: [String] = []
        for await event in events { seen.append("\(event)") }   // .producerClose, .transportClose, ...
        #expect(seen == ["producerClose"])
        await worker.close()
    }
}
