import Testing
import RingSFUTestSupport
import RingSFUCShims
@testable import RingSFU
@testable import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// Collects every element of a sequence until it finishes; fails the test if
/// it does not finish within `seconds`.
func collect<E: Sendable>(_ stream: AsyncStream<E>, seconds: Double = 10, sourceLocation: SourceLocation = #_sourceLocation) async -> [E] {
    let result = await withTaskGroup(of: [E]?.self) { group in
        group.addTask {
            var out: [E] = []
            for await e in stream { out.append(e) }
            return out
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next()!
        group.cancelAll()
        return first
    }
    if result == nil { Issue.record("event sequence did not finish", sourceLocation: sourceLocation) }
    return result ?? []
}

/// Names of events, for compact assertions.
func names<E>(_ events: [E]) -> [String] {
    events.map { e in
        let s = String(describing: e)
        return String(s.prefix { $0 != "(" })
    }
}

let opus = RtpCodecCapability(kind: .audio, mimeType: "audio/opus", clockRate: 48000, channels: 2)
let vp8 = RtpCodecCapability(kind: .video, mimeType: "video/VP8", clockRate: 90000)

/// The capabilities a typical endpoint advertises for VP8 + Opus.
func endpointCaps(_ router: Router) -> RtpCapabilities {
    router.rtpCapabilities
}

func videoParams(ssrc: UInt32, pt: Int = 96, exts: [RtpHeaderExtensionParameters] = []) -> RtpParameters {
    RtpParameters(codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: pt, clockRate: 90000)], headerExtensions: exts, encodings: [RtpEncodingParameters(ssrc: ssrc)], rtcp: RtcpParameters(cname: "test"))
}

func audioParams(ssrc: UInt32, pt: Int = 111) -> RtpParameters {
    RtpParameters(codecs: [RtpCodecParameters(mimeType: "audio/opus", payloadType: pt, clockRate: 48000, channels: 2)], encodings: [RtpEncodingParameters(ssrc: ssrc)], rtcp: RtcpParameters(cname: "test"))
}

let loopback = TransportListenInfo(protocol: "udp", ip: "127.0.0.1")

///
/// Packets stay resendable for a minute: with the whole suite running at
/// once a test can wait seconds for its turn between a packet and its NACK
/// (the age limit has its own test).
func testWorker() async throws -> Worker {
    var settings = WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 256, maxProducers: 256, maxConsumers: 1024)
    settings.retransmissionMaxAgeMs = 60_000
    return try await Worker.create(settings)
}

/// True once a UDP port on loopback can be bound again (polls up to 2 s).
func portIsFree(_ port: Int) async -> Bool {
    for _ in 0..<40 {
        if let b = try? UdpSocket.bind(ip: "127.0.0.1", port: UInt16(port), range: 1...65535) {
            close(b.fd)
            return true
        }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return false
}
