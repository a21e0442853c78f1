#if canImport(Glibc)
import Glibc
#endif
import RingSFUForwarder

/// The UDP socket and the TCP listener a WebRTC endpoint (a transport of
/// its own, or a WebRtcServer) binds from its `listenInfos`: at most one of
/// each, with the tuples its candidates announce, in `listenInfos` order.
struct WebRtcListenSockets {
    var udpFd: Int32?
    var tcpFd: Int32?
    var tuples: [TransportTuple]

    /// Each entry's protocol: the one it names, or for an entry without one
    /// the protocols in `unnamed` (false: UDP, true: TCP).
    static func entries(_ infos: [TransportListenInfo], unnamed: [Bool], owner: String) throws(SFUError) -> [(info: TransportListenInfo, tcp: Bool)] {
        var entries: [(info: TransportListenInfo, tcp: Bool)] = []
        for (i, info) in infos.enumerated() {
            switch info.protocol {
            case "udp": entries.append((info, false))
            case "tcp": entries.append((info, true))
            case nil: entries += unnamed.map { (info, $0) }
            case let p?: throw .invalidArgument("invalid listenInfos[\(i)].protocol \"\(p)\" (udp or tcp)")
            }
        }
        guard entries.count(where: { !$0.tcp }) <= 1, entries.count(where: { $0.tcp }) <= 1 else {
            throw .unsupported("a \(owner) listens on at most one UDP and one TCP address")
        }
        return entries
    }

    /// Binds every entry; on a failure nothing stays open.
    @RingSFUActor
    static func bind(_ entries: [(info: TransportListenInfo, tcp: Bool)], worker: Worker) throws(SFUError) -> WebRtcListenSockets {
        var sockets = WebRtcListenSockets(tuples: [])
        for (i, entry) in entries.enumerated() {
            do {
                let b = try PlainTransport.bind(entry.info, worker: worker, field: "listenInfos[\(i)]", tcp: entry.tcp)
                if entry.tcp { sockets.tcpFd = b.fd } else { sockets.udpFd = b.fd }
                sockets.tuples.append(TransportTuple(localAddress: entry.info.announcedAddress ?? entry.info.announcedIp ?? entry.info.ip,
                                                     localPort: Int(b.local.port), protocol: entry.tcp ? "tcp" : "udp"))
            } catch {
                sockets.close()
                throw error
            }
        }
        return sockets
    }

    /// For a failure before the forwarder took the sockets over.
    func close() {
        if let udpFd { Glibc.close(udpFd) }
        if let tcpFd { Glibc.close(tcpFd) }
    }
}
