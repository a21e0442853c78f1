import ArgumentParser
import Foundation
import RingSFU

extension Fanout {
    /// The room's producers on `ingest`: one per video stream (or per three,
    /// as one simulcast producer's encodings) and one per audio stream.
    @RingSFUActor
    static func produce(on ingest: Transport, video: [UInt32], audio: [UInt32], transportCc: Bool, simulcast: Bool) throws -> [Producer] {
        var producers: [Producer] = []
        let extensions = transportCc ? [RtpHeaderExtensionParameters(uri: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", id: Int(Self.transportCcId))] : []
        let feedback = transportCc ? [RtcpFeedback(type: "transport-cc", parameter: "")] : []
        let groups: [[UInt32]] = simulcast ? stride(from: 0, to: video.count - 2, by: 3).map { Array(video[$0..<($0 + 3)]) } : video.map { [$0] }
        for ssrcs in groups {
            producers.append(try ingest.produce(ProducerOptions(kind: .video, rtpParameters: RtpParameters(
                codecs: [RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000, rtcpFeedback: feedback)],
                headerExtensions: extensions, encodings: ssrcs.map { RtpEncodingParameters(ssrc: $0) }, rtcp: RtcpParameters(cname: "perf")))))
        }
        for ssrc in audio {
            producers.append(try ingest.produce(ProducerOptions(kind: .audio, rtpParameters: RtpParameters(
                codecs: [RtpCodecParameters(mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2, rtcpFeedback: feedback)],
                headerExtensions: extensions, encodings: [RtpEncodingParameters(ssrc: ssrc)], rtcp: RtcpParameters(cname: "perf")))))
        }
        return producers
    }

    /// The producers piped from `home` to `router` the way cluster nodes
    /// pipe them: a PipeTransport pair on loopback UDP, SRTP both ways, RTX
    /// negotiated; one pipe consumer and one pipe producer per producer.
    @RingSFUActor
    static func pipeOverUdp(_ producers: [Producer], from home: Router, to router: Router) throws -> [Producer] {
        let listen = TransportListenInfo(protocol: "udp", ip: "127.0.0.1")
        let near = try home.createPipeTransport(PipeTransportOptions(listenInfo: listen, enableRtx: true, enableSrtp: true))
        let far = try router.createPipeTransport(PipeTransportOptions(listenInfo: listen, enableRtx: true, enableSrtp: true))
        guard let nearTuple = near.tuple, let farTuple = far.tuple else { throw ValidationError("pipe transports without a tuple") }
        try near.connect(ip: "127.0.0.1", port: farTuple.localPort, srtpParameters: far.srtpParameters)
        try far.connect(ip: "127.0.0.1", port: nearTuple.localPort, srtpParameters: near.srtpParameters)
        return try producers.map { p in
            let c = try near.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: RtpCapabilities()))
            return try far.produce(ProducerOptions(id: p.id, kind: c.kind, rtpParameters: c.rtpParameters, paused: c.producerPaused))
        }
    }
}
