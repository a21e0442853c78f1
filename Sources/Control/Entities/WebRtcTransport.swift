import Foundation
import RingSFUForwarder

/// ICE parameters, with mediasoup's names.
public struct IceParameters: Codable, Sendable, Hashable {
    public var usernameFragment: String
    public var password: String
    public var iceLite: Bool?
}

extension IceParameters {
    /// New ICE-lite credentials (16-character ufrag, 32-character password).
    static func random() -> IceParameters {
        IceParameters(usernameFragment: WebRtcTransport.randomString(16), password: WebRtcTransport.randomString(32), iceLite: true)
    }

    var credentials: IceCredentials {
        IceCredentials(usernameFragment: Array(usernameFragment.utf8), password: Array(password.utf8))
    }
}

/// An ICE candidate as mediasoup signals it.
public struct IceCandidate: Codable, Sendable, Hashable {
    public var foundation: String
    public var priority: UInt32
    public var address: String
    /// Older name of `address`.
    public var ip: String
    public var `protocol`: String
    public var port: Int
    public var type: String
    public var tcpType: String?
}

public struct DtlsFingerprint: Codable, Sendable, Hashable {
    public var algorithm: String
    public var value: String
    public init(algorithm: String, value: String) {
        self.algorithm = algorithm
        self.value = value
    }
}

public struct DtlsParameters: Codable, Sendable, Hashable {
    /// "auto", "client" or "server".
    public var role: String?
    public var fingerprints: [DtlsFingerprint]
    public init(role: String? = "auto", fingerprints: [DtlsFingerprint]) {
        self.role = role
        self.fingerprints = fingerprints
    }
}

/// Options of `router.createWebRtcTransport`.
public struct WebRtcTransportOptions: Codable, Sendable {
    /// Where to listen (not needed with `webRtcServerId`).
    public var listenInfos: [TransportListenInfo]?
    public var enableUdp: Bool?
    public var enableTcp: Bool?
    public var preferUdp: Bool?
    /// Listen on this WebRtcServer's port instead of a port of its own.
    public var webRtcServerId: String?
    public var appData: AppData?

    public init(listenInfos: [TransportListenInfo]? = nil, enableUdp: Bool? = true, enableTcp: Bool? = false, preferUdp: Bool? = nil, webRtcServerId: String? = nil, appData: AppData? = nil) {
        self.webRtcServerId = webRtcServerId
        self.listenInfos = listenInfos
        self.enableUdp = enableUdp
        self.enableTcp = enableTcp
        self.preferUdp = preferUdp
        self.appData = appData
    }
}

/// A transport to a WebRTC endpoint: ICE-lite, DTLS 1.2 and SRTP.
@RingSFUActor
public final class WebRtcTransport: Transport {
    public private(set) var iceParameters: IceParameters
    public nonisolated let iceCandidates: [IceCandidate]
    public nonisolated let dtlsParameters: DtlsParameters
    /// "new", "connected", "completed", "disconnected", "closed".
    public private(set) var iceState = "new"
    public private(set) var iceSelectedTuple: TransportTuple?
    /// "new", "connecting", "connected", "failed", "closed".
    public private(set) var dtlsState = "new"
    private var connected = false
    private let localAddress: String
    private let localPort: Int

    init(router: Router, worker: Worker, handle: UInt32, ice: IceParameters, candidates: [IceCandidate], dtls: DtlsParameters, localAddress: String, localPort: Int, appData: AppData) {
        iceParameters = ice
        iceCandidates = candidates
        dtlsParameters = dtls
        self.localAddress = localAddress
        self.localPort = localPort
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    /// ICE credentials from the system's cryptographic random source.
    nonisolated static func randomString(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }

    weak var server: WebRtcServer?

    static func make(router: Router, worker: Worker, options: WebRtcTransportOptions, server: WebRtcServer?) throws(SFUError) -> WebRtcTransport {
        let handle: UInt32
        let local: TransportTuple
        let ice = IceParameters.random()
        if let server {
            try server.checkOpen()
            guard server.worker === worker else { throw .invalidArgument("the WebRtcServer belongs to another worker") }
            try worker.ensureSrtp()
            guard let h = worker.forwarder.transportHandles.allocate() else { throw .failure("too many transports in this worker") }
            worker.forwarder.send(.addServerWebRtcTransport(handle: h, router: router.handle, server: server.handle, ice.credentials))
            handle = h
            local = server.tuple
        } else {
            guard let info = options.listenInfos?.first else { throw .invalidArgument("missing listenInfos (or webRtcServerId)") }
            if options.enableTcp == true || info.protocol == "tcp" { throw .unsupported("TCP candidates are not supported yet") }
            if options.enableUdp == false { throw .invalidArgument("enableUdp false leaves no candidate") }
            try worker.ensureSrtp()
            (handle, local, _) = try PlainTransport.openSockets(router: router, worker: worker, options: PlainTransportOptions(listenInfo: info), webrtc: ice.credentials)
        }
        let candidate = IceCandidate(foundation: "udpcandidate", priority: 1_076_302_079, address: local.localAddress, ip: local.localAddress, protocol: "udp", port: local.localPort, type: "host", tcpType: nil)
        let t = WebRtcTransport(router: router, worker: worker, handle: handle, ice: ice, candidates: [candidate], dtls: DtlsParameters(role: "auto", fingerprints: fingerprints(worker)), localAddress: local.localAddress, localPort: local.localPort, appData: options.appData ?? [:])
        if let server {
            t.server = server
            server.handle(t)
        }
        return t
    }

    static func fingerprints(_ worker: Worker) -> [DtlsFingerprint] {
        DtlsContext.algorithms.compactMap { alg in worker.forwarder.dtls.fingerprint(alg).map { DtlsFingerprint(algorithm: alg, value: $0) } }
    }

    /// Gives the remote DTLS parameters: its role decides ours (remote
    /// "server" makes us the client; "client" or "auto" makes us the server).
    public func connect(dtlsParameters remote: DtlsParameters) throws(SFUError) {
        try checkOpen()
        if connected { throw .invalidState("connect() already called") }
        let role = remote.role ?? "auto"
        guard ["auto", "client", "server"].contains(role) else { throw .invalidArgument("invalid dtlsParameters.role \"\(role)\"") }
        // Prefer the strongest fingerprint the remote gave.
        let order = ["sha-512", "sha-384", "sha-256", "sha-224", "sha-1"]
        guard let fingerprint = order.lazy.compactMap({ alg in remote.fingerprints.first { $0.algorithm.lowercased() == alg } }).first else {
            throw .invalidArgument("dtlsParameters.fingerprints has no supported algorithm")
        }
        connected = true
        forwarder.send(.connectWebRtcTransport(handle: handle, client: role == "server", fingerprintAlgorithm: fingerprint.algorithm.lowercased(), fingerprint: fingerprint.value))
    }

    /// New ICE credentials (the remote must restart ICE with them).
    public func restartIce() throws(SFUError) -> IceParameters {
        try checkOpen()
        iceParameters = IceParameters.random()
        forwarder.send(.restartIce(handle: handle, iceParameters.credentials))
        return iceParameters
    }

    func iceSelectedTupleChanged(_ address: SocketAddress) {
        guard !closed else { return }
        let tuple = TransportTuple(localAddress: localAddress, localPort: localPort, remoteIp: address.ip, remotePort: Int(address.port))
        iceSelectedTuple = tuple
        eventChannel.emit(.iceSelectedTupleChange(tuple))
        worker?.notify("transport.iceselectedtuplechange", id, ["iceSelectedTuple": .encoding(tuple)])
    }

    func iceStateChanged(_ state: String) {
        guard !closed, iceState != state else { return }
        iceState = state
        eventChannel.emit(.iceStateChange(state))
        worker?.notify("transport.icestatechange", id, ["iceState": .string(state)])
    }

    func dtlsStateChanged(_ state: String) {
        guard !closed, dtlsState != state else { return }
        dtlsState = state
        eventChannel.emit(.dtlsStateChange(state))
        worker?.notify("transport.dtlsstatechange", id, ["dtlsState": .string(state)])
    }

    override func didClose() {
        server?.transportClosed(self)
        // States go to closed without events, as in mediasoup.
        iceState = "closed"
        dtlsState = "closed"
    }

    override var statsType: String { "webrtc-transport" }
}
