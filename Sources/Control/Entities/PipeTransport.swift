import Foundation
import RingSFUForwarder

/// Options of `router.createPipeTransport` (a pipe over UDP).
public struct PipeTransportOptions: Codable, Sendable {
    public var listenInfo: TransportListenInfo
    /// Negotiate RTX on pipe consumers (default false).
    public var enableRtx: Bool?
    public var enableSrtp: Bool?
    /// SCTP straight over the UDP tuple, for piping data producers between
    /// hosts (UDP pipes only; in-process pairs carry data without it).
    public var enableSctp: Bool?
    public var numSctpStreams: NumSctpStreams?
    public var maxSctpMessageSize: Int?
    public var sctpSendBufferSize: Int?
    public var appData: AppData?

    public init(listenInfo: TransportListenInfo, enableRtx: Bool? = false, enableSrtp: Bool? = false, appData: AppData? = nil) {
        self.listenInfo = listenInfo
        self.enableRtx = enableRtx
        self.enableSrtp = enableSrtp
        self.appData = appData
    }
}

/// A pipe between routers. Two kinds:
/// - in-process, created in pairs by `router.pipeToRouter`: packets cross to
///   the peer router's worker through a ring in memory (no socket, no SRTP);
///   closing either end closes the other;
/// - over UDP, created by `router.createPipeTransport` and `connect`ed to the
///   other end, for routers in other processes or hosts.
/// Consumers on a pipe transport are pipe consumers (every encoding, no MID).
@RingSFUActor
public final class PipeTransport: Transport {
    weak var peer: PipeTransport?
    /// The UDP tuple (nil for an in-process pipe).
    public private(set) var tuple: TransportTuple?
    /// With `enableSrtp` (AES_CM_128_HMAC_SHA1_80, as mediasoup's pipes): the
    /// key this end sends with; give it to the other end's `connect`.
    public private(set) var srtpParameters: SrtpParameters?
    private var connected = false
    /// Set while pipeToRouter makes a pipe data consumer: on an in-process
    /// pair only those carry messages (to their pipe data producer).
    var makingPipeDataConsumer = false
    /// Pipe consumers get an RTX stream and NACK (UDP pipes between hosts lose packets).
    public private(set) var enableRtx = false

    static func make(router: Router, worker: Worker, options: PipeTransportOptions) throws(SFUError) -> PipeTransport {
        let plain = PlainTransportOptions(listenInfo: options.listenInfo, rtcpMux: true, comedia: false, appData: options.appData)
        // Same socket set-up as a plain transport with RTCP multiplexed.
        var srtp: (SrtpParameters, SrtpKey)? = nil
        if options.enableSrtp == true {
            try worker.ensureSrtp()
            srtp = SrtpParameters.random(.aesCm128HmacSha1_80)
        }
        let (handle, tuple, _) = try PlainTransport.openSockets(router: router, worker: worker, options: plain)
        if let srtp { worker.forwarder.send(.setTransportSrtp(handle: handle, send: srtp.1, receive: nil)) }
        let t = PipeTransport(router: router, worker: worker, handle: handle, appData: options.appData ?? [:])
        t.tuple = tuple
        t.srtpParameters = srtp?.0
        t.enableRtx = options.enableRtx ?? false
        try t.setUpSctp(enabled: options.enableSctp, SctpOptions(options.numSctpStreams, options.maxSctpMessageSize, options.sctpSendBufferSize))
        return t
    }

    /// Sets the other end's address (UDP pipes only) and, with SRTP, the key
    /// the other end sends with.
    public func connect(ip: String, port: Int, srtpParameters remote: SrtpParameters? = nil) throws(SFUError) {
        try checkOpen()
        guard tuple != nil else { throw .invalidState("an in-process pipe needs no connect()") }
        if connected { throw .invalidState("connect() already called") }
        if srtpParameters != nil {
            guard let remote else { throw .invalidArgument("missing srtpParameters (SRTP enabled)") }
            forwarder.send(.setTransportSrtp(handle: handle, send: nil, receive: try remote.key(field: "srtpParameters")))
        } else if remote != nil {
            throw .invalidArgument("srtpParameters given but SRTP not enabled")
        }
        guard (1...65535).contains(port), let address = SocketAddress(ip: ip, port: UInt16(port)) else {
            throw .invalidArgument("invalid ip/port \(ip):\(port)")
        }
        connected = true
        forwarder.send(.connectTransport(handle: handle, rtp: address, rtcp: nil))
        tuple?.remoteIp = ip
        tuple?.remotePort = port
        sctp?.connect(remotePort: 5000)
    }

    static func makePair(_ a: Router, _ b: Router) throws(SFUError) -> (PipeTransport, PipeTransport) {
        guard let wa = a.worker, let wb = b.worker else { throw .invalidState("Router closed") }
        let linkAB = try wa.pipeLink(to: wb)
        let linkBA = try wb.pipeLink(to: wa)
        guard let ha = wa.forwarder.transportHandles.allocate() else { throw .failure("too many transports in this worker") }
        guard let hb = wb.forwarder.transportHandles.allocate() else {
            wa.forwarder.transportHandles.release(ha)
            throw .failure("too many transports in this worker")
        }
        wa.forwarder.send(.addPipeTransport(handle: ha, router: a.handle, link: linkAB, peer: hb))
        wb.forwarder.send(.addPipeTransport(handle: hb, router: b.handle, link: linkBA, peer: ha))
        let ta = PipeTransport(router: a, worker: wa, handle: ha, appData: [:])
        let tb = PipeTransport(router: b, worker: wb, handle: hb, appData: [:])
        ta.peer = tb
        tb.peer = ta
        return (ta, tb)
    }

    override var statsType: String { "pipe-transport" }

    /// In-process pairs carry data messages (as SCTP streams would); UDP
    /// pipes with `enableSctp` carry them over SCTP.
    override var dataType: String? { tuple == nil ? "sctp" : super.dataType }

    public struct Dump: Codable, Sendable {
        public var id: String
        /// The UDP tuple; nil for an in-process pipe.
        public var tuple: TransportTuple?
        public var rtx: Bool
        public var srtpParameters: SrtpParameters?
        public var sctpParameters: SctpParameters?
        public var sctpState: String?
        /// In-process pipes: the other end's transport id.
        public var peerTransportId: String?
        public var producerIds: [String]
        public var consumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, tuple: tuple, rtx: enableRtx, srtpParameters: srtpParameters, sctpParameters: sctpParameters, sctpState: sctpState, peerTransportId: peer?.id,
                    producerIds: producers.keys, consumerIds: consumers.keys)
    }

    /// Every consumer here is a pipe consumer: all encodings, no MID.
    override func consumerParameters(for producer: Producer, _ options: ConsumerOptions, remoteIds: Bool) throws(SFUError) -> (RtpParameters, pipe: Bool) {
        (Ortc.pipeConsumerParameters(producer.consumableRtpParameters, enableRtx: enableRtx && producer.kind == .video), true)
    }

    /// Either end closing closes the other, and the routers forget the pair.
    override func didClose() {
        router?.pipePairClosed(self)
        if let peer, !peer.closed { peer.close() }
    }
}
