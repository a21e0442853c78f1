import Foundation
import RingSFUForwarder

/// Where a transport listens, with mediasoup's field names.
public struct TransportListenInfo: Codable, Sendable, Hashable {
    public struct PortRange: Codable, Sendable, Hashable {
        public var min: Int
        public var max: Int
        public init(min: Int, max: Int) { self.min = min; self.max = max }
    }
    public var `protocol`: String?
    public var ip: String
    /// The address given to the remote side (e.g. a public address in front of NAT).
    public var announcedAddress: String?
    /// Older name of `announcedAddress`.
    public var announcedIp: String?
    public var port: Int?
    public var portRange: PortRange?
    public var sendBufferSize: Int?
    public var recvBufferSize: Int?

    public init(protocol: String? = "udp", ip: String, announcedAddress: String? = nil, port: Int? = nil, portRange: PortRange? = nil) {
        self.protocol = `protocol`
        self.ip = ip
        self.announcedAddress = announcedAddress
        self.port = port
        self.portRange = portRange
    }
}

/// SRTP parameters with mediasoup's names: the suite and the master key
/// plus salt, base64.
public struct SrtpParameters: Codable, Sendable, Hashable {
    public var cryptoSuite: String
    public var keyBase64: String
    public init(cryptoSuite: String, keyBase64: String) {
        self.cryptoSuite = cryptoSuite
        self.keyBase64 = keyBase64
    }

    func key(field: String) throws(SFUError) -> SrtpKey {
        guard let suite = SrtpCryptoSuite(rawValue: cryptoSuite) else {
            throw .unsupported("unsupported \(field).cryptoSuite \"\(cryptoSuite)\"")
        }
        guard let data = Data(base64Encoded: keyBase64), data.count == suite.keyLength else {
            throw .invalidArgument("invalid \(field).keyBase64: expected \(suite.keyLength) bytes for \(cryptoSuite)")
        }
        return SrtpKey(suite: suite, key: Array(data))
    }

    static func random(_ suite: SrtpCryptoSuite) -> (SrtpParameters, SrtpKey) {
        var rng = SystemRandomNumberGenerator()
        let key = (0..<suite.keyLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return (SrtpParameters(cryptoSuite: suite.rawValue, keyBase64: Data(key).base64EncodedString()), SrtpKey(suite: suite, key: key))
    }
}

/// Options of `router.createPlainTransport`.
public struct PlainTransportOptions: Codable, Sendable {
    public var listenInfo: TransportListenInfo
    public var rtcpListenInfo: TransportListenInfo?
    /// RTP and RTCP on one port (default true).
    public var rtcpMux: Bool?
    /// Learn the remote address from the first packet received (default false).
    public var comedia: Bool?
    /// SCTP straight over the UDP tuple (no DTLS), as mediasoup does.
    public var enableSctp: Bool?
    public var numSctpStreams: NumSctpStreams?
    public var maxSctpMessageSize: Int?
    public var sctpSendBufferSize: Int?
    public var enableSrtp: Bool?
    public var srtpCryptoSuite: String?
    public var appData: AppData?

    public init(listenInfo: TransportListenInfo, rtcpListenInfo: TransportListenInfo? = nil, rtcpMux: Bool? = true, comedia: Bool? = false, enableSrtp: Bool? = nil, srtpCryptoSuite: String? = nil, appData: AppData? = nil) {
        self.srtpCryptoSuite = srtpCryptoSuite
        self.listenInfo = listenInfo
        self.rtcpListenInfo = rtcpListenInfo
        self.rtcpMux = rtcpMux
        self.comedia = comedia
        self.enableSrtp = enableSrtp
        self.appData = appData
    }
}

/// Plain RTP/RTCP over UDP, optionally with separate RTCP port and with
/// comedia (learn the remote from the first packet), as mediasoup does.
@RingSFUActor
public final class PlainTransport: Transport {
    public private(set) var tuple: TransportTuple
    public private(set) var rtcpTuple: TransportTuple?
    /// With `enableSrtp`: the suite and key this transport sends with.
    public nonisolated let srtpParameters: SrtpParameters?
    public nonisolated let rtcpMux: Bool
    public nonisolated let comedia: Bool
    private var connected = false

    init(router: Router, worker: Worker, handle: Handle, tuple: TransportTuple, rtcpTuple: TransportTuple?, rtcpMux: Bool, comedia: Bool, srtpParameters: SrtpParameters?, appData: AppData) {
        self.srtpParameters = srtpParameters
        self.tuple = tuple
        self.rtcpTuple = rtcpTuple
        self.rtcpMux = rtcpMux
        self.comedia = comedia
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    static func make(router: Router, worker: Worker, options: PlainTransportOptions) throws(SFUError) -> PlainTransport {
        var srtp: (SrtpParameters, SrtpKey)? = nil
        if options.enableSrtp == true {
            let name = options.srtpCryptoSuite ?? SrtpCryptoSuite.aesCm128HmacSha1_80.rawValue
            guard let suite = SrtpCryptoSuite(rawValue: name) else { throw .unsupported("unsupported srtpCryptoSuite \"\(name)\"") }
            try worker.ensureSrtp()
            srtp = SrtpParameters.random(suite)
        }
        let (handle, tuple, rtcpTuple) = try openSockets(router: router, worker: worker, options: options)
        if let srtp { worker.forwarder.send(.setTransportSrtp(handle: handle, send: srtp.1, receive: nil)) }
        let t = PlainTransport(router: router, worker: worker, handle: handle, tuple: tuple, rtcpTuple: rtcpTuple, rtcpMux: options.rtcpMux ?? true, comedia: options.comedia ?? false, srtpParameters: srtp?.0, appData: options.appData ?? [:])
        try t.setUpSctp(enabled: options.enableSctp, SctpOptions(options.numSctpStreams, options.maxSctpMessageSize, options.sctpSendBufferSize))
        return t
    }

    /// Binds the transport's socket(s) and hands them to the forwarder as a
    /// socket transport (shared with UDP pipe transports).
    static func openSockets(router: Router, worker: Worker, options: PlainTransportOptions) throws(SFUError) -> (Handle, TransportTuple, TransportTuple?) {
        let info = options.listenInfo
        if let p = info.protocol, p != "udp" { throw .invalidArgument("listenInfo.protocol must be \"udp\" for a PlainTransport") }
        guard SocketAddress(ip: info.ip, port: 0) != nil else { throw .invalidArgument("invalid listenInfo.ip \"\(info.ip)\"") }
        let rtcpMux = options.rtcpMux ?? true
        let comedia = options.comedia ?? false
        let rtp = try bind(info, worker: worker, field: "listenInfo")
        var rtcp: UdpSocket.Bound? = nil
        if !rtcpMux {
            do {
                rtcp = try bind(options.rtcpListenInfo ?? TransportListenInfo(protocol: "udp", ip: info.ip, announcedAddress: info.announcedAddress ?? info.announcedIp), worker: worker, field: "rtcpListenInfo")
            } catch {
                Glibc.close(rtp.fd)
                throw error
            }
        }
        guard let handle = worker.forwarder.transportHandles.allocate() else {
            Glibc.close(rtp.fd)
            if let rtcp { Glibc.close(rtcp.fd) }
            throw .failure("too many transports in this worker")
        }
        let announced = info.announcedAddress ?? info.announcedIp ?? info.ip
        let tuple = TransportTuple(localAddress: announced, localPort: Int(rtp.local.port))
        let rtcpTuple = rtcp.map { TransportTuple(localAddress: options.rtcpListenInfo?.announcedAddress ?? announced, localPort: Int($0.local.port)) }
        worker.forwarder.send(.addPlainTransport(handle: handle, router: router.handle, rtpFd: rtp.fd, rtcpFd: rtcp?.fd, comedia: comedia))
        return (handle, tuple, rtcpTuple)
    }

    /// Binds a listen info's socket: UDP, or a listening TCP socket.
    static func bind(_ info: TransportListenInfo, worker: Worker, field: String, tcp: Bool = false) throws(SFUError) -> UdpSocket.Bound {
        var range = worker.portRange
        if let r = info.portRange {
            guard (1...65535).contains(r.min), (1...65535).contains(r.max), r.min <= r.max else {
                throw .invalidArgument("invalid \(field).portRange")
            }
            range = UInt16(r.min)...UInt16(r.max)
        }
        if let p = info.port, !(0...65535).contains(p) { throw .invalidArgument("invalid \(field).port \(p)") }
        let port = info.port.flatMap { $0 == 0 ? nil : UInt16($0) }
        do {
            if tcp { return try UdpSocket.listenTcp(ip: info.ip, port: port, range: range) }
            return try UdpSocket.bind(ip: info.ip, port: port, range: range,
                                      receiveBuffer: Int32(info.recvBufferSize ?? 4 << 20),
                                      sendBuffer: Int32(info.sendBufferSize ?? 4 << 20))
        } catch {
            switch error {
            case .badAddress(let ip): throw .invalidArgument("invalid \(field).ip \"\(ip)\"")
            case .noFreePort(let lo, let hi): throw .failure("no free \(tcp ? "TCP" : "UDP") port in \(lo)-\(hi)")
            case .system(let what, let errno): throw .failure("\(what) failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Sets the remote address (not with comedia) and, with SRTP, the key
    /// the remote sends with (`srtpParameters`, required then; with comedia
    /// it is the only thing to give).
    public func connect(ip: String? = nil, port: Int? = nil, rtcpPort: Int? = nil, srtpParameters: SrtpParameters? = nil) throws(SFUError) {
        try checkOpen()
        if connected { throw .invalidState("connect() already called") }
        var receiveKey: SrtpKey? = nil
        if self.srtpParameters != nil {
            guard let srtpParameters else { throw .invalidArgument("missing srtpParameters (SRTP enabled)") }
            receiveKey = try srtpParameters.key(field: "srtpParameters")
        } else if srtpParameters != nil {
            throw .invalidArgument("srtpParameters given but SRTP not enabled")
        }
        var rtp: SocketAddress? = nil
        var rtcp: SocketAddress? = nil
        if comedia {
            if ip != nil || port != nil { throw .invalidState("cannot call connect() with ip/port when comedia mode is enabled") }
            if receiveKey == nil { throw .invalidState("cannot call connect() when comedia mode is enabled") }
        } else {
            guard let ip else { throw .invalidArgument("missing ip") }
            guard let port else { throw .invalidArgument("missing port") }
            guard (1...65535).contains(port), let address = SocketAddress(ip: ip, port: UInt16(port)) else {
                throw .invalidArgument("invalid ip/port \(ip):\(port)")
            }
            rtp = address
            if !rtcpMux {
                guard let rtcpPort else { throw .invalidArgument("missing rtcpPort (required with rtcpMux false)") }
                guard (1...65535).contains(rtcpPort) else { throw .invalidArgument("invalid rtcpPort \(rtcpPort)") }
                rtcp = SocketAddress(ip: ip, port: UInt16(rtcpPort))
            }
        }
        connected = true
        if let receiveKey { forwarder.send(.setTransportSrtp(handle: handle, send: nil, receive: receiveKey)) }
        if let rtp, let ip, let port {
            forwarder.send(.connectTransport(handle: handle, rtp: rtp, rtcp: rtcp))
            tuple.remoteIp = ip
            tuple.remotePort = port
            if let rtcp { rtcpTuple?.remoteIp = ip; rtcpTuple?.remotePort = Int(rtcp.port) }
            // SCTP starts once the remote is known.
            sctp?.connect(remotePort: 5000)
        }
    }

    func tupleLearned(_ address: SocketAddress, rtcp: Bool) {
        guard !closed else { return }
        if rtcp {
            guard rtcpTuple != nil else { return }
            rtcpTuple!.remoteIp = address.ip
            rtcpTuple!.remotePort = Int(address.port)
            publish(.rtcpTuple(rtcpTuple!))
            observerChannel.emit(.rtcpTuple(rtcpTuple!))
        } else {
            tuple.remoteIp = address.ip
            tuple.remotePort = Int(address.port)
            sctp?.connect(remotePort: 5000)
            publish(.tuple(tuple))
            observerChannel.emit(.tuple(tuple))
        }
    }

    override var statsType: String { "plain-rtp-transport" }

    public override func getStats() async throws(SFUError) -> [TransportStats] {
        var stats = try await super.getStats()
        stats[0].tuple = tuple
        stats[0].rtcpTuple = rtcpTuple
        stats[0].comedia = comedia
        stats[0].rtcpMux = rtcpMux
        return stats
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var srtpParameters: SrtpParameters?
        public var tuple: TransportTuple
        public var rtcpTuple: TransportTuple?
        public var rtcpMux: Bool
        public var comedia: Bool
        public var sctpParameters: SctpParameters?
        public var sctpState: String?
        public var producerIds: [String]
        public var consumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, srtpParameters: srtpParameters, tuple: tuple, rtcpTuple: rtcpTuple, rtcpMux: rtcpMux, comedia: comedia, sctpParameters: sctpParameters, sctpState: sctpState, producerIds: producers.keys, consumerIds: consumers.keys)
    }
}

#if canImport(Glibc)
import Glibc
#endif
