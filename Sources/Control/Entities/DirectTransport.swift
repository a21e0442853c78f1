import Foundation
import RingSFUForwarder

/// Options of `router.createDirectTransport`.
public struct DirectTransportOptions: Codable, Sendable {
    /// Largest message (RTP packet or data message) the application may send.
    public var maxMessageSize: Int?
    public var appData: AppData?

    public init(maxMessageSize: Int? = 262_144, appData: AppData? = nil) {
        self.maxMessageSize = maxMessageSize
        self.appData = appData
    }
}

/// A transport without network: the application itself sends RTP into the
/// router (`producer.send(rtpPacket:)`) and receives each consumer's RTP as
/// `ConsumerEvent.rtp` events. Useful for recording, injecting generated
/// media, or bridging to other systems.
@RingSFUActor
public final class DirectTransport: Transport {
    public nonisolated let maxMessageSize: Int

    init(router: Router, worker: Worker, handle: Handle, maxMessageSize: Int, appData: AppData) {
        self.maxMessageSize = maxMessageSize
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    static func make(router: Router, worker: Worker, options: DirectTransportOptions) throws(SFUError) -> DirectTransport {
        let size = options.maxMessageSize ?? 262_144
        guard size > 0 else { throw .invalidArgument("maxMessageSize must be a positive number") }
        guard let handle = worker.forwarder.transportHandles.allocate() else { throw .failure("too many transports in this worker") }
        worker.forwarder.send(.addDirectTransport(handle: handle, router: router.handle))
        return DirectTransport(router: router, worker: worker, handle: handle, maxMessageSize: size, appData: options.appData ?? [:])
    }

    /// Sends an RTCP packet into the router as if received on this transport.
    public func sendRtcp(_ packet: [UInt8]) throws(SFUError) {
        try checkOpen()
        try check(packet, what: "rtcpPacket")
        forwarder.send(.injectRtp(transport: handle, packet))
    }

    func directRtcp(_ packet: [UInt8]) {
        guard !closed else { return }
        publish(.rtcp(packet))
    }

    func check(_ packet: [UInt8], what: String) throws(SFUError) {
        guard !packet.isEmpty else { throw .invalidArgument("empty \(what)") }
        guard packet.count <= min(maxMessageSize, forwarder.settings.bufferSize) else {
            throw .invalidArgument("\(what) of \(packet.count) bytes exceeds the maximum of \(min(maxMessageSize, forwarder.settings.bufferSize))")
        }
    }

    /// The application is the endpoint: there is nobody to send a REMB to
    /// and no congestion control (mediasoup refuses these too).
    public override func setMaxIncomingBitrate(_ bitrate: Int) throws(SFUError) {
        throw .unsupported("setMaxIncomingBitrate() not implemented in DirectTransport")
    }

    public override func setMaxOutgoingBitrate(_ bitrate: Int) throws(SFUError) {
        throw .unsupported("setMaxOutgoingBitrate() not implemented in DirectTransport")
    }

    public override func setMinOutgoingBitrate(_ bitrate: Int) throws(SFUError) {
        throw .unsupported("setMinOutgoingBitrate() not implemented in DirectTransport")
    }

    override var statsType: String { "direct-transport" }
    override var dataType: String? { "direct" }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var maxMessageSize: Int
        public var producerIds: [String]
        public var consumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, maxMessageSize: maxMessageSize, producerIds: producers.keys, consumerIds: consumers.keys)
    }
}
