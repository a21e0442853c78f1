import RingSFU
import ArgumentParser

/// Consumers with and without transport-wide CC (`fanout --consumer-cc`).
extension Fanout {
    static let transportCcUri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

    /// A receiver that does not do transport-wide CC.
    static func withoutTransportCc(_ caps: RtpCapabilities) -> RtpCapabilities {
        var caps = caps
        caps.headerExtensions = caps.headerExtensions?.filter { $0.uri != transportCcUri }
        caps.codecs = caps.codecs?.map { c in
            var c = c
            c.rtcpFeedback = c.rtcpFeedback?.filter { $0.type != "transport-cc" }
            return c
        }
        return caps
    }

    /// The id consumers write the transport-wide sequence number under (the router's).
    @RingSFUActor
    static func consumerTransportCcId(_ worker: Worker) throws -> UInt8 {
        let router = try worker.createRouter(mediaCodecs: roomCodecs)
        defer { router.close() }
        guard let ext = router.rtpCapabilities.headerExtensions?.first(where: { $0.uri == transportCcUri && $0.kind == .video }) else {
            throw ValidationError("the router offers no transport-wide CC extension")
        }
        return UInt8(ext.preferredId)
    }
}
