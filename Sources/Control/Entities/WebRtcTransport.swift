import Foundation
import RingSFUForwarder

/// A WebRTC transport's ICE and DTLS states (mediasoup's names); the
/// forwarder reports them with these same types.
public typealias IceState = RingSFUForwarder.IceState
public typealias DtlsState = RingSFUForwarder.DtlsState

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
    public var preferTcp: Bool?
    /// Listen on this WebRtcServer's port instead of a port of its own.
    public var webRtcServerId: String?
    /// Data channels: an SCTP association over DTLS (mediasoup's options
    /// and defaults: 1024 streams each way, 262144-byte messages).
    public var enableSctp: Bool?
    public var numSctpStreams: NumSctpStreams?
    public var maxSctpMessageSize: Int?
    public var sctpSendBufferSize: Int?
    public var appData: AppData?

    public init(listenInfos: [TransportListenInfo]? = nil, enableUdp: Bool? = nil, enableTcp: Bool? = nil, preferUdp: Bool? = nil, preferTcp: Bool? = nil, webRtcServerId: String? = nil, appData: AppData? = nil) {
        self.preferTcp = preferTcp
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
    public private(set) var iceState = IceState.new
    public private(set) var iceSelectedTuple: TransportTuple?
    /// "new", "connecting", "connected", "failed", "closed".
    public private(set) var dtlsState = DtlsState.new
    private var connected = false
    /// Where we listen (one entry per candidate, with its protocol).
    private let localTuples: [TransportTuple]

    init(router: Router, worker: Worker, handle: Handle, ice: IceParameters, candidates: [IceCandidate], dtls: DtlsParameters, localTuples: [TransportTuple], appData: AppData) {
        iceParameters = ice
        iceCandidates = candidates
        dtlsParameters = dtls
        self.localTuples = localTuples
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
        let handle: Handle
        var tuples: [TransportTuple]
        let ice = IceParameters.random()
        if let server {
            try server.checkOpen()
            guard server.worker === worker else { throw .invalidArgument("the WebRtcServer belongs to another worker") }
            // As mediasoup: on a server both protocols are on unless disabled.
            tuples = server.tuples.filter { $0.protocol == "tcp" ? options.enableTcp ?? true : options.enableUdp ?? true }
            guard !tuples.isEmpty else { throw .invalidArgument("enableUdp and enableTcp leave no candidate on this WebRtcServer") }
            try worker.ensureSrtp()
            guard let h = worker.forwarder.transportHandles.allocate() else { throw .failure("too many transports in this worker") }
            worker.forwarder.send(.addServerWebRtcTransport(handle: h, router: router.handle, server: server.handle, ice.credentials))
            handle = h
        } else {
            let entries = try listenEntries(options)
            try worker.ensureSrtp()
            (handle, tuples) = try openSockets(entries, router: router, worker: worker, ice: ice)
        }
        let candidates = candidates(for: tuples, preferUdp: options.preferUdp ?? false, preferTcp: options.preferTcp ?? false)
        let t = WebRtcTransport(router: router, worker: worker, handle: handle, ice: ice, candidates: candidates, dtls: DtlsParameters(role: "auto", fingerprints: fingerprints(worker)), localTuples: tuples, appData: options.appData ?? [:])
        try t.setUpSctp(enabled: options.enableSctp, SctpOptions(options.numSctpStreams, options.maxSctpMessageSize, options.sctpSendBufferSize))
        if let server {
            t.server = server
            server.handle(t)
        }
        return t
    }



    /// Resolves `listenInfos` to one protocol each: an entry without a
    /// protocol gives UDP unless `enableUdp` is false, and TCP if `enableTcp`.
    static func listenEntries(_ options: WebRtcTransportOptions) throws(SFUError) -> [(info: TransportListenInfo, tcp: Bool)] {
        guard let infos = options.listenInfos, !infos.isEmpty else { throw .invalidArgument("missing listenInfos (or webRtcServerId)") }
        let unnamed = (options.enableUdp ?? true ? [false] : []) + (options.enableTcp ?? false ? [true] : [])
        let entries = try WebRtcListenSockets.entries(infos, unnamed: unnamed, owner: "WebRtcTransport (a WebRtcServer shares ports among transports)")
        guard !entries.isEmpty else { throw .invalidArgument("enableUdp and enableTcp leave no candidate") }
        return entries
    }

    private static func openSockets(_ entries: [(info: TransportListenInfo, tcp: Bool)], router: Router, worker: Worker, ice: IceParameters) throws(SFUError) -> (Handle, [TransportTuple]) {
        let sockets = try WebRtcListenSockets.bind(entries, worker: worker)
        guard let handle = worker.forwarder.transportHandles.allocate() else {
            sockets.close()
            throw .failure("too many transports in this worker")
        }
        worker.forwarder.send(.addWebRtcTransport(handle: handle, router: router.handle, fd: sockets.udpFd, tcpFd: sockets.tcpFd, ice.credentials))
        return (handle, sockets.tuples)
    }

    /// Host candidates in listen order, as mediasoup ranks them: type
    /// preference 64, local preference 10000 lowered by 100 per entry
    /// (+1000 for the preferred protocol), component 1.
    static func candidates(for tuples: [TransportTuple], preferUdp: Bool, preferTcp: Bool) -> [IceCandidate] {
        tuples.enumerated().map { i, tuple in
            let tcp = tuple.protocol == "tcp"
            var local = 10_000 - 100 * min(i, 99)
            if (tcp && preferTcp) || (!tcp && preferUdp) { local += 1_000 }
            let priority = UInt32(64) << 24 + UInt32(local) << 8 + 255
            return IceCandidate(foundation: tcp ? "tcpcandidate" : "udpcandidate", priority: priority, address: tuple.localAddress, ip: tuple.localAddress,
                                protocol: tuple.protocol, port: tuple.localPort, type: "host", tcpType: tcp ? "passive" : nil)
        }
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

    func iceSelectedTupleChanged(_ address: SocketAddress, tcp: Bool) {
        guard !closed else { return }
        let proto = tcp ? "tcp" : "udp"
        guard let local = localTuples.first(where: { $0.protocol == proto }) else { return }
        let tuple = TransportTuple(localAddress: local.localAddress, localPort: local.localPort, remoteIp: address.ip, remotePort: Int(address.port), protocol: proto)
        iceSelectedTuple = tuple
        publish(.iceSelectedTupleChange(tuple))
    }

    func iceStateChanged(_ state: IceState) {
        guard !closed, iceState != state else { return }
        iceState = state
        publish(.iceStateChange(state))
    }

    func dtlsStateChanged(_ state: DtlsState) {
        guard !closed, dtlsState != state else { return }
        dtlsState = state
        if state == .connected { sctp?.connect(remotePort: 5000) }
        if state == .failed || state == .closed, let sctp, sctp.state != .failed, sctp.state != .closed {
            sctpStateChanged(state == .failed ? "failed" : "closed")
        }
        publish(.dtlsStateChange(state))
    }

    override func didClose() {
        server?.transportClosed(self)
        // States go to closed without events, as in mediasoup.
        iceState = .closed
        dtlsState = .closed
    }

    override var statsType: String { "webrtc-transport" }

    public override func getStats() async throws(SFUError) -> [TransportStats] {
        var stats = try await super.getStats()
        stats[0].iceRole = "controlled"
        stats[0].iceState = iceState
        stats[0].iceSelectedTuple = iceSelectedTuple
        stats[0].dtlsState = dtlsState
        stats[0].sctpState = sctpState
        return stats
    }

    /// mediasoup's WebRtcTransport dump fields.
    public struct Dump: Codable, Sendable {
        public var id: String
        public var iceRole: String
        public var iceParameters: IceParameters
        public var iceCandidates: [IceCandidate]
        public var iceState: IceState
        public var iceSelectedTuple: TransportTuple?
        public var dtlsParameters: DtlsParameters
        public var dtlsState: DtlsState
        public var sctpParameters: SctpParameters?
        public var sctpState: String?
        public var producerIds: [String]
        public var consumerIds: [String]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        return Dump(id: id, iceRole: "controlled", iceParameters: iceParameters, iceCandidates: iceCandidates, iceState: iceState,
                    iceSelectedTuple: iceSelectedTuple, dtlsParameters: dtlsParameters, dtlsState: dtlsState,
                    sctpParameters: sctpParameters, sctpState: sctpState, producerIds: producers.keys, consumerIds: consumers.keys)
    }
}
