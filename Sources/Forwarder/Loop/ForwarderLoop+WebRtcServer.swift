import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// WebRTC servers: one UDP socket for many WebRTC transports. STUN is
/// routed by the ufrag in USERNAME; everything else by the source tuple a
/// transport's ICE selected.
extension ForwarderLoop {
    mutating func addWebRtcServer(_ h: Int, fd: Int32?, tcpFd: Int32?) {
        guard h < Int(settings.maxWebRtcServers) else {
            if let fd { close(fd) }
            if let tcpFd { close(tcpFd) }
            return
        }
        var state = WebRtcServerState(inUse: true)
        if let fd {
            let s = freeSockets.pop()
            if s >= 0 {
                sockets[Int(s)] = SocketState(inUse: true, fd: fd, transport: 0, isRtcp: false, closing: false, armed: false, server: Int32(h), kernelDrops: 0)
                _ = rsfu_enable_rxq_ovfl(fd)
                armReceive(socket: Int(s))
                state.socket = s
            } else {
                close(fd)
            }
        }
        if let tcpFd { state.tcpListener = addTcpListener(fd: tcpFd, transport: -1, server: h) }
        servers[h] = state
    }

    mutating func closeWebRtcServer(_ h: Int) {
        guard h < Int(settings.maxWebRtcServers), servers[h].inUse else { return }
        for t in 0..<Int(settings.maxTransports) where transports[t].inUse && transports[t].server == Int32(h) {
            closeTransport(t)
        }
        beginSocketClose(servers[h].socket)
        beginSocketClose(servers[h].tcpListener)
        closeTcpConnections(server: h)
        servers[h] = WebRtcServerState()
    }

    mutating func addServerWebRtcTransport(_ h: Int, router: Int, server: Int, _ credentials: IceCredentials) {
        guard server < Int(settings.maxWebRtcServers), servers[server].inUse else { return }
        addTransport(h, router: router, rtpFd: nil, rtcpFd: nil, comedia: false)
        transports[h].webrtc = true
        transports[h].srtpRequired = true
        transports[h].server = Int32(server)
        var w = WebRtcState()
        setCredentials(&w, credentials)
        webrtc[h] = w
        registerUfrag(h, credentials.usernameFragment)
    }

    mutating func registerUfrag(_ t: Int, _ ufrag: [UInt8]) {
        let server = UInt32(transports[t].server)
        if transports[t].ufragKey != 0 { ufragTable.remove(transport: server, ssrc: transports[t].ufragKey) }
        transports[t].ufragKey = ufrag.withUnsafeBytes { ForwarderLoop.valueKey($0.baseAddress!, $0.count) }
        ufragTable.insert(transport: server, ssrc: transports[t].ufragKey, value: UInt32(t))
    }

    /// Called when ICE selects a tuple of a server transport. TCP tuples
    /// need no entry: their connection is bound to the transport.
    mutating func registerTuple(_ t: Int, _ address: SocketAddress, tcp: Bool) {
        guard transports[t].server >= 0 else { return }
        let server = UInt32(transports[t].server)
        if transports[t].tupleKey != 0 { tupleTable.remove(transport: server, ssrc: transports[t].tupleKey) }
        transports[t].tupleKey = 0
        guard !tcp else { return }
        transports[t].tupleKey = Self.tupleKey(address)
        tupleTable.insert(transport: server, ssrc: transports[t].tupleKey, value: UInt32(t))
    }

    mutating func unregisterServerTransport(_ t: Int) {
        guard transports[t].server >= 0 else { return }
        let server = UInt32(transports[t].server)
        if transports[t].ufragKey != 0 { ufragTable.remove(transport: server, ssrc: transports[t].ufragKey) }
        if transports[t].tupleKey != 0 { tupleTable.remove(transport: server, ssrc: transports[t].tupleKey) }
    }

    static func tupleKey(_ a: SocketAddress) -> UInt32 {
        withUnsafeBytes(of: a.storage) { raw in valueKeyBytes(raw.baseAddress!, Int(a.length)) }
    }

    /// FNV-1a over raw bytes (zeros included), never 0.
    static func valueKeyBytes(_ p: UnsafeRawPointer, _ length: Int) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for i in 0..<length { h = (h ^ UInt32(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x0100_0193 }
        return h == 0 ? 1 : h
    }

    @inline(__always)
    mutating func receiveOnServer(_ packet: UnsafeMutableRawPointer, size: Int, socket: Int, name: UnsafeMutableRawPointer, nameLength: Int) {
        let server = UInt32(sockets[socket].server)
        var transport: UInt32? = nil
        if PacketClass.classify(packet, count: size) == .stun {
            // USERNAME is "ourUfrag:theirUfrag": route by the part before ':'.
            if let m = try? StunMessage.parse(packet, count: size), let (offset, length) = m.username {
                var colon = length
                for i in 0..<length where packet.load(fromByteOffset: offset + i, as: UInt8.self) == UInt8(ascii: ":") { colon = i; break }
                let key = ForwarderLoop.valueKey(packet + offset, colon)
                transport = ufragTable.lookup(transport: server, ssrc: key)
            }
        } else if sockets[socket].kind == .tcpConnection {
            transport = sockets[socket].bound ? sockets[socket].transport : nil
        } else {
            let key = ForwarderLoop.valueKeyBytes(name, nameLength)
            transport = tupleTable.lookup(transport: server, ssrc: key)
        }
        guard let t = transport.map(Int.init), transports[t].inUse, transports[t].webrtc else {
            counters.dropStun &+= 1 // unknown ufrag or tuple: silently dropped
            return
        }
        transports[t].counters.packets &+= 1
        transports[t].counters.bytes &+= UInt64(size)
        processWebRtc(packet, size: size, transport: t, socket: socket, name: name, nameLength: nameLength)
    }
}
