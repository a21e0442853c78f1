import Foundation
import RingSFUForwarder

/// Options of `worker.createWebRtcServer`.
public struct WebRtcServerOptions: Codable, Sendable {
    public var listenInfos: [TransportListenInfo]
    public var appData: AppData?
    public init(listenInfos: [TransportListenInfo], appData: AppData? = nil) {
        self.listenInfos = listenInfos
        self.appData = appData
    }
}

public enum WebRtcServerEvent: Sendable {
    case workerClose
}

public enum WebRtcServerObserverEvent: Sendable {
    case close
    case webRtcTransportHandled(WebRtcTransport)
    case webRtcTransportUnhandled(WebRtcTransport)
}

/// Many WebRtcTransports on one UDP port and one TCP port: packets are
/// demultiplexed by the ICE ufrag, then by the tuple (or TCP connection)
/// ICE selected.
@RingSFUActor
public final class WebRtcServer {
    public nonisolated let id: String
    /// The first listening address (kept for callers that expect one).
    public nonisolated var tuple: TransportTuple { tuples[0] }
    /// Every listening address, UDP and TCP, in `listenInfos` order.
    public nonisolated let tuples: [TransportTuple]
    public private(set) var closed = false
    public var appData: AppData

    weak var worker: Worker?
    let forwarder: ForwarderWorker
    let handle: Handle
    var transports = OrderedMap<WebRtcTransport>()
    private let eventChannel = EventChannel<WebRtcServerEvent>()
    private let observerChannel = EventChannel<WebRtcServerObserverEvent>()

    init(worker: Worker, handle: Handle, tuples: [TransportTuple], appData: AppData) {
        id = UUID().uuidString.lowercased()
        self.worker = worker
        self.forwarder = worker.forwarder
        self.handle = handle
        self.tuples = tuples
        self.appData = appData
    }

    static func make(worker: Worker, options: WebRtcServerOptions) throws(SFUError) -> WebRtcServer {
        guard !options.listenInfos.isEmpty else { throw .invalidArgument("listenInfos is empty") }
        let entries = try WebRtcListenSockets.entries(options.listenInfos, unnamed: [false], owner: "WebRtcServer")
        let sockets = try WebRtcListenSockets.bind(entries, worker: worker)
        guard let handle = worker.forwarder.serverHandles.allocate() else {
            sockets.close()
            throw .failure("too many WebRTC servers in this worker")
        }
        worker.forwarder.send(.addWebRtcServer(handle: handle, fd: sockets.udpFd, tcpFd: sockets.tcpFd))
        let tuples = sockets.tuples
        return WebRtcServer(worker: worker, handle: handle, tuples: tuples, appData: options.appData ?? [:])
    }

    public var events: AsyncStream<WebRtcServerEvent> { eventChannel.subscribe() }
    public var observer: AsyncStream<WebRtcServerObserverEvent> { observerChannel.subscribe() }

    func checkOpen() throws(SFUError) {
        if closed { throw .invalidState("WebRtcServer closed") }
    }

    /// Closes the server: its transports emit `listenServerClose`.
    public func close() {
        guard !closed else { return }
        closed = true
        forwarder.send(.closeWebRtcServer(handle))
        closeTransports()
        worker?.webRtcServerClosed(self)
        forwarder.serverHandles.release(handle)
        observerChannel.emit(.close)
        finish()
    }

    func workerClosed() {
        guard !closed else { return }
        closed = true
        closeTransports()
        forwarder.serverHandles.release(handle)
        eventChannel.emit(.workerClose)
        observerChannel.emit(.close)
        finish()
    }

    private func closeTransports() {
        // Each transport reports itself unhandled as it closes (didClose).
        for t in transports.values { t.listenServerClosed() }
        transports.removeAll()
    }

    private func finish() {
        eventChannel.finish()
        observerChannel.finish()
    }

    /// An address a server listens on, as mediasoup's dump gives it.
    public struct ListenAddress: Codable, Sendable, Hashable {
        public var ip: String
        public var port: Int
    }

    public struct UsernameFragmentEntry: Codable, Sendable, Hashable {
        public var localIceUsernameFragment: String
        public var webRtcTransportId: String
    }

    public struct Dump: Codable, Sendable {
        public var id: String
        public var udpSockets: [ListenAddress]
        public var tcpServers: [ListenAddress]
        public var webRtcTransportIds: [String]
        /// The ICE ufrags incoming STUN is demultiplexed by.
        public var localIceUsernameFragments: [UsernameFragmentEntry]
    }

    public func dump() throws(SFUError) -> Dump {
        try checkOpen()
        func addresses(_ proto: String) -> [ListenAddress] {
            tuples.filter { $0.protocol == proto }.map { ListenAddress(ip: $0.localAddress, port: $0.localPort) }
        }
        return Dump(id: id, udpSockets: addresses("udp"), tcpServers: addresses("tcp"), webRtcTransportIds: transports.keys,
                    localIceUsernameFragments: transports.values.map {
                        UsernameFragmentEntry(localIceUsernameFragment: $0.iceParameters.usernameFragment, webRtcTransportId: $0.id)
                    })
    }

    func handle(_ t: WebRtcTransport) {
        transports[t.id] = t
        observerChannel.emit(.webRtcTransportHandled(t))
    }

    func transportClosed(_ t: WebRtcTransport) {
        guard transports[t.id] != nil else { return }
        transports[t.id] = nil
        observerChannel.emit(.webRtcTransportUnhandled(t))
    }
}
