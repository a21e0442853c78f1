import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// ffmpeg (Debian's) as a real SRTP peer: it publishes VP8 over SRTP
/// (AES_CM_128_HMAC_SHA1_80) into a PlainTransport with enableSrtp, and a
/// second ffmpeg receives the SFU's SRTP consumer and decodes frames.
/// scripts/setup.sh installs ffmpeg; without it these tests are skipped.
let ffmpegPath: String? = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("ffmpeg SRTP interop", .enabled(if: ffmpegPath != nil)) @RingSFUActor
struct FfmpegSrtpTests {
    func run(_ args: [String]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ffmpegPath!)
        p.arguments = ["-hide_banner", "-nostdin", "-loglevel", "info"] + args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return (p, err)
    }

    @Test func ffmpegPublishesAndReceivesSrtp() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let vp8Pt = router.rtpCapabilities.codecs!.first { $0.mimeType == "video/VP8" }!.preferredPayloadType!
        let ingest = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true, enableSrtp: true, srtpCryptoSuite: "AES_CM_128_HMAC_SHA1_80"))
        let (publisherParams, _) = SrtpParameters.random(.aesCm128HmacSha1_80)
        try ingest.connect(srtpParameters: publisherParams)
        let producer = try ingest.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 22222, pt: 96)))

        // The receiving ffmpeg listens on a free even port (RTP) and the next (RTCP).
        let probe = try UdpSocket.bind(ip: "127.0.0.1", port: nil, range: 46000...46998)
        close(probe.fd)
        let recvPort = Int(probe.local.port) & ~1
        let egress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, enableSrtp: true, srtpCryptoSuite: "AES_CM_128_HMAC_SHA1_80"))
        let (unusedKey, _) = SrtpParameters.random(.aesCm128HmacSha1_80)
        try egress.connect(ip: "127.0.0.1", port: recvPort, srtpParameters: unusedKey)
        _ = try egress.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        await worker.sync()

        let sdp = """
        v=0
        o=- 0 0 IN IP4 127.0.0.1
        s=ringsfu
        c=IN IP4 127.0.0.1
        t=0 0
        m=video \(recvPort) RTP/SAVP \(vp8Pt)
        a=rtpmap:\(vp8Pt) VP8/90000
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\(egress.srtpParameters!.keyBase64)

        """
        let sdpFile = FileManager.default.temporaryDirectory.appendingPathComponent("ringsfu-\(UUID().uuidString).sdp")
        try sdp.write(to: sdpFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: sdpFile) }
        let (receiver, receiverErr) = try run(["-protocol_whitelist", "file,udp,rtp,srtp,crypto", "-stats_period", "0.2", "-i", sdpFile.path, "-f", "null", "-"])
        try await Task.sleep(for: .milliseconds(500))
        let (sender, _) = try run(["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", "3",
                                   "-c:v", "libvpx", "-deadline", "realtime", "-b:v", "300k", "-g", "15",
                                   "-f", "rtp", "-ssrc", "22222", "-payload_type", "96",
                                   "-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", publisherParams.keyBase64,
                                   "srtp://127.0.0.1:\(ingest.tuple.localPort)?pkt_size=1200"])
        while sender.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        try await Task.sleep(for: .milliseconds(700))
        receiver.interrupt()
        // ffmpeg may sit in a blocking read; its progress lines are already out.
        for _ in 0..<30 where receiver.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        if receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) }
        while receiver.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        let log = String(decoding: receiverErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // ffmpeg reports "frame=   N" as it decodes.
        let frames = log.components(separatedBy: "frame=").dropFirst().compactMap { Int($0.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber }) }.max() ?? 0
        #expect(sender.terminationStatus == 0)
        #expect(frames > 10, "decoded frames: \(frames)\n\(log.suffix(1500))")
        let usage = await worker.getResourceUsage()
        #expect(usage.dropSrtpAuth == 0)
        #expect(usage.packetsOut > 10)
        worker.close()
    }
}

#if canImport(Glibc)
import Glibc
#endif
