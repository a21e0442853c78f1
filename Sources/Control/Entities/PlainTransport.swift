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

/// Options of `router.createPlainTransport`.
public struct PlainTransportOptions: Codable, Sendable {
    public var listenInfo: TransportListenInfo
    public var rtcpListenInfo: TransportListenInfo?
    /// RTP and RTCP on one port (default true).
    public var rtcpMux: Bool?
    /// Learn the remote address from the first packet received (default false).
    public var comedia: Bool?
    public var enableSctp: Bool?
    public var enableSrtp: Bool?
    public var srtpCryptoSuite: String?
    public var appData: AppData?

    public init(listenInfo: TransportListenInfo, rtcpListenInfo: TransportListenInfo? = nil, rtcpMux: Bool? = true, comedia: Bool? = false, enableSrtp: Bool? = nil, appData: AppData? = nil) {
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
    public nonisolated let rtcpMux: Bool
    public nonisolated let comedia: Bool
    private var connected = false

    init(router: Router, worker: Worker, handle: UInt32, tuple: TransportTuple, rtcpTuple: TransportTuple?, rtcpMux: Bool, comedia: Bool, appData: AppData) {
        self.tuple = tuple
        self.rtcpTuple = rtcpTuple
        self.rtcpMux = rtcpMux
        self.comedia = comedia
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    static func make(router: Router, worker: Worker, options: PlainTransportOptions) throws(SFUError) -> PlainTransport {
        let (handle, tuple, rtcpTuple) = try openSockets(router: router, worker: worker, options: options)
        return PlainTransport(router: router, worker: worker, handle: handle, tuple: tuple, rtcpTuple: rtcpTuple, rtcpMux: options.rtcpMux ?? true, comedia: options.comedia ?? false, appData: options.appData ?? [:])
    }

    /// Binds the transport's socket(s) and hands them to the forwarder as a
    /// socket transport (shared with UDP pipe transports).
    static func openSockets(router: Router, worker: Worker, options: PlainTransportOptions) throws(SFUError) -> (UInt32, TransportTuple, TransportTuple?) {
        let info = options.listenInfo
        if let p = info.protocol, p != "udp" { throw .invalidArgument("listenInfo.protocol must be \"udp\" for a PlainTransport") }
        if options.enableSrtp == true { throw .unsupported("enableSrtp is not supported yet") }
        if options.enableSctp == true { throw .unsupported("enableSctp is not supported yet") }
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

    private static func bind(_ info: TransportListenInfo, worker: Worker, field: String) throws(SFUError) -> UdpSocket.Bound {
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
            return try UdpSocket.bind(ip: info.ip, port: port, range: range,
                                      receiveBuffer: Int32(info.recvBufferSize ?? 4 << 20),
                                      sendBuffer: Int32(info.sendBufferSize ?? 4 << 20))
        } catch {
            switch error {
            case .badAddress(let ip): throw .invalidArgument("invalid \(field).ip \"\(ip)\"")
            case .noFreePort(let lo, let hi): throw .failure("no free UDP port in \(lo)-\(hi)")
            case .system(let what, let errno): throw .failure("\(what) failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Sets the remote address (not with comedia).
    public func connect(ip: String, port: Int, rtcpPort: Int? = nil) throws(SFUError) {
        try checkOpen()
        if comedia { throw .invalidState("cannot call connect() when comedia mode is enabled") }
        if connected { throw .invalidState("connect() already called") }
        guard (1...65535).contains(port), let rtp = SocketAddress(ip: ip, port: UInt16(port)) else {
            throw .invalidArgument("invalid ip/port \(ip):\(port)")
        }
        var rtcp: SocketAddress? = nil
        if !rtcpMux {
            guard let rtcpPort else { throw .invalidArgument("missing rtcpPort (required with rtcpMux false)") }
            guard (1...65535).contains(rtcpPort) else { throw .invalidArgument("invalid rtcpPort \(rtcpPort)") }
            rtcp = SocketAddress(ip: ip, port: UInt16(rtcpPort))
        }
        connected = true
        forwarder.send(.connectTransport(handle: handle, rtp: rtp, rtcp: rtcp))
        tuple.remoteIp = ip
        tuple.remotePort = port
        if let rtcp { rtcpTuple?.remoteIp = ip; rtcpTuple?.remotePort = Int(rtcp.port) }
    }

    func tupleLearned(_ address: SocketAddress, rtcp: Bool) {
        guard !closed else { return }
        if rtcp {
            guard rtcpTuple != nil else { return }
            rtcpTuple!.remoteIp = address.ip
            rtcpTuple!.remotePort = Int(address.port)
            eventChannel.emit(.rtcpTuple(rtcpTuple!))
            worker?.notify("transport.rtcptuple", id, ["rtcpTuple": .encoding(rtcpTuple!)])
            observerChannel.emit(.rtcpTuple(rtcpTuple!))
        } else {
            tuple.remoteIp = address.ip
            tuple.remotePort = Int(address.port)
            eventChannel.emit(.tuple(tuple))
            worker?.notify("transport.tuple", id, ["tuple": .encoding(tuple)])
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
        public var tuple: TransportTuple
        public var rtcpTuple: TransportTuple?
        public var rtcpMux: Bool
        public var comedia: Bool
        public var producerIds: [String]
        public var consumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, tuple: tuple, rtcpTuple: rtcpTuple, rtcpMux: rtcpMux, comedia: comedia, producerIds: producers.keys, consumerIds: consumers.keys)
    }
}

#if canImport(Glibc)
import Glibc
#endif
