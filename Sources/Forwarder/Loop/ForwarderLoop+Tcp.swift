import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing) on the worker
/// thread. Each accepted connection has a receive buffer that reassembles
/// 2-byte-length-prefixed frames, and a send ring drained by one send at a
/// time so the byte stream stays ordered across partial writes. A frame is
/// handled exactly like a datagram from the connection's peer.
extension ForwarderLoop {
    static func tcpReceiveSize(_ settings: ForwarderSettings) -> Int { 2 * (settings.bufferSize + 2) }

    /// Takes over a listening socket (of a WebRTC transport, or of a server).
    mutating func addTcpListener(fd: Int32, transport: Int, server: Int) -> Int32 {
        let s = freeSockets.pop()
        guard s >= 0 else { close(fd); return -1 }
        sockets[Int(s)] = SocketState(inUse: true, fd: fd, transport: UInt32(max(transport, 0)), server: Int32(server), kind: .tcpListener)
        armAccept(socket: Int(s))
        return s
    }

    mutating func armAccept(socket s: Int) {
        let e = sqe()
        io_uring_prep_multishot_accept(e, sockets[s].fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(e, userData(.accept, s))
        sockets[s].armed = true
    }

    mutating func handleAccept(_ cqe: UnsafeMutablePointer<io_uring_cqe>, socket s: Int) {
        let res = cqe.pointee.res
        let more = cqe.pointee.flags & rsfu_cqe_f_more() != 0
        if res >= 0 {
            if sockets[s].inUse && !sockets[s].closing { adoptConnection(fd: res, listener: s) } else { close(res) }
        }
        guard !more else { return }
        sockets[s].armed = false
        if sockets[s].closing {
            finishSocketClose(s)
        } else if sockets[s].inUse, res >= 0 || res == -EINTR || res == -ECONNABORTED || res == -EMFILE || res == -ENFILE {
            armAccept(socket: s)
        }
    }

    mutating func adoptConnection(fd: Int32, listener: Int) {
        var peer = SocketAddress()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &peer.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        peer.length = length
        let sourceKey = peer.hostKey
        // Connections that have not proved anything yet are capped per
        // listener and per source; they are few (the table is small), so
        // counting them at each accept is cheap.
        var fromListener = 0, fromSource = 0
        if freeTcpConns.available < freeTcpConns.capacity {
            for i in 0..<freeTcpConns.capacity where tcpConns[i].inUse && !tcpConns[i].verified {
                if tcpConns[i].listener == Int32(listener) { fromListener += 1 }
                if tcpConns[i].sourceKey == sourceKey { fromSource += 1 }
            }
        }
        guard fromListener < settings.maxPendingTcpPerListener, fromSource < settings.maxPendingTcpPerSource else {
            counters.tcpRefused &+= 1
            close(fd)
            return
        }
        let c = freeTcpConns.pop()
        let s = c >= 0 ? freeSockets.pop() : -1
        guard c >= 0, s >= 0 else {
            if c >= 0 { freeTcpConns.push(c) }
            counters.tcpRefused &+= 1
            close(fd)
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var conn = TcpConnState()
        conn.inUse = true
        conn.socket = s
        conn.peer = peer
        conn.acceptedNs = rsfu_monotonic_ns()
        conn.listener = Int32(listener)
        conn.sourceKey = sourceKey
        tcpConns[Int(c)] = conn
        let own = sockets[listener].server < 0
        sockets[Int(s)] = SocketState(inUse: true, fd: fd, transport: sockets[listener].transport, server: sockets[listener].server, kind: .tcpConnection, conn: c, bound: own)
        counters.tcpAccepted &+= 1
        // Every listener's connections must pass a STUN check in time (a
        // transport's own listener included: its connections are bound to
        // the transport from the start, but an idle one proves nothing).
        timers.schedule(.init(kind: TimerKind.tcpIdle.rawValue, argument: UInt32(c)), at: conn.acceptedNs + Int64(settings.tcpIdleTimeoutMs) * 1_000_000)
        armTcpReceive(socket: Int(s))
    }

    mutating func armTcpReceive(socket s: Int) {
        let c = Int(sockets[s].conn)
        let received = tcpConns[c].received
        let e = sqe()
        io_uring_prep_recv(e, sockets[s].fd, tcpReceiveSlab.slot(c) + received, Self.tcpReceiveSize(settings) - received, 0)
        io_uring_sqe_set_data64(e, userData(.tcpReceive, s))
        sockets[s].armed = true
    }

    mutating func handleTcpReceive(result res: Int32, socket s: Int) {
        sockets[s].armed = false
        guard !sockets[s].closing else { finishTcpIfIdle(s); return }
        guard res > 0 else {
            if res == -EINTR || res == -EAGAIN { armTcpReceive(socket: s) } else { closeTcpConnection(s) }
            return
        }
        let c = Int(sockets[s].conn)
        let buffer = tcpReceiveSlab.slot(c)
        tcpConns[c].received += Int(res)
        var offset = 0
        while tcpConns[c].received - offset >= 2 {
            let length = Int(readUInt16(buffer, offset))
            guard length <= settings.bufferSize else {
                // Larger than any packet we handle: not a media peer.
                counters.dropTcpFrame &+= 1
                closeTcpConnection(s)
                return
            }
            guard tcpConns[c].received - offset >= 2 + length else { break }
            // Copied out: frames sit at any alignment, and handling one may
            // rewrite it in place (SRTP).
            receiveScratch.copyMemory(from: buffer + offset + 2, byteCount: length)
            offset += 2 + length
            if length > 0 { receiveFrame(receiveScratch, size: length, socket: s, connection: c) }
            guard sockets[s].inUse, !sockets[s].closing else { finishTcpIfIdle(s); return }
        }
        if offset > 0 {
            let rest = tcpConns[c].received - offset
            if rest > 0 { memmove(buffer, buffer + offset, rest) }
            tcpConns[c].received = rest
        }
        armTcpReceive(socket: s)
    }

    mutating func receiveFrame(_ packet: UnsafeMutableRawPointer, size: Int, socket s: Int, connection c: Int) {
        counters.packetsIn &+= 1
        counters.bytesIn &+= UInt64(size)
        let peer = UnsafeMutableRawPointer((tcpConns + c).pointer(to: \.peer.storage)!)
        let peerLength = Int(tcpConns[c].peer.length)
        if sockets[s].server >= 0 {
            receiveOnServer(packet, size: size, socket: s, name: peer, nameLength: peerLength)
            return
        }
        let t = Int(sockets[s].transport)
        guard transports[t].inUse, transports[t].webrtc else { return }
        transports[t].counters.packets &+= 1
        transports[t].counters.bytes &+= UInt64(size)
        processWebRtc(packet, size: size, transport: t, socket: s, name: peer, nameLength: peerLength)
    }

    // MARK: - Sending

    /// Appends one framed packet to the connection's send ring; the send
    /// itself starts at the end of the turn. A full ring drops the packet
    /// (a peer that cannot keep up must not hold packet memory).
    mutating func tcpWrite(socket s: Int, _ data: UnsafeRawPointer, length: Int) {
        let c = Int(sockets[s].conn)
        guard c >= 0, !sockets[s].closing else { return }
        let capacity = settings.tcpSendBufferSize
        guard tcpConns[c].tail - tcpConns[c].head + 2 + length <= capacity else {
            counters.dropTcpBackpressure &+= 1
            return
        }
        let ring = tcpSendSlab.slot(c)
        var prefix = UInt16(length).bigEndian
        withUnsafeBytes(of: &prefix) { ringCopy(ring, capacity, at: tcpConns[c].tail, from: $0.baseAddress!, count: 2) }
        ringCopy(ring, capacity, at: tcpConns[c].tail + 2, from: data, count: length)
        tcpConns[c].tail += 2 + length
        // Counted once in the ring (a UDP packet counts when its send
        // completes; a TCP send completes bytes, not packets).
        counters.packetsOut &+= 1
        if !tcpConns[c].queued && tcpConns[c].sending == 0 {
            tcpConns[c].queued = true
            tcpDirty[tcpDirtyCount] = Int32(c)
            tcpDirtyCount += 1
        }
    }

    @inline(__always)
    func ringCopy(_ ring: UnsafeMutableRawPointer, _ capacity: Int, at position: Int, from source: UnsafeRawPointer, count: Int) {
        let start = position % capacity
        let first = min(count, capacity - start)
        (ring + start).copyMemory(from: source, byteCount: first)
        if first < count { ring.copyMemory(from: source + first, byteCount: count - first) }
    }

    mutating func flushTcp() {
        for i in 0..<tcpDirtyCount {
            let c = Int(tcpDirty[i])
            tcpConns[c].queued = false
            startTcpSend(c)
        }
        tcpDirtyCount = 0
    }

    /// Sends the ring's next contiguous bytes (a wrapped ring takes two sends).
    mutating func startTcpSend(_ c: Int) {
        let s = Int(tcpConns[c].socket)
        guard tcpConns[c].inUse, tcpConns[c].sending == 0, !sockets[s].closing else { return }
        let pending = tcpConns[c].tail - tcpConns[c].head
        guard pending > 0 else { return }
        let capacity = settings.tcpSendBufferSize
        let start = tcpConns[c].head % capacity
        let n = min(pending, capacity - start)
        let e = sqe()
        io_uring_prep_send(e, sockets[s].fd, tcpSendSlab.slot(c) + start, n, Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(e, userData(.tcpSend, c))
        tcpConns[c].sending = n
        counters.sendCalls &+= 1
    }

    mutating func handleTcpSend(result res: Int32, connection c: Int) {
        let s = Int(tcpConns[c].socket)
        tcpConns[c].sending = 0
        if res > 0 {
            tcpConns[c].head += Int(res)
            counters.bytesOut &+= UInt64(res)
        }
        if sockets[s].closing { finishTcpIfIdle(s); return }
        if res > 0 || res == -EAGAIN || res == -EINTR {
            startTcpSend(c)
        } else {
            closeTcpConnection(s)
        }
    }

    // MARK: - Closing

    /// Closes a connection (peer gone, error, or its transport closing).
    /// shutdown() ends the pending receive and send; the fd is closed once
    /// both have completed. If it carried the selected tuple, ICE loses it.
    mutating func closeTcpConnection(_ s: Int) {
        guard sockets[s].inUse, !sockets[s].closing else { return }
        sockets[s].closing = true
        counters.tcpClosed &+= 1
        let t = Int(sockets[s].transport)
        if sockets[s].bound, transports[t].inUse, transports[t].webrtc, transports[t].sendSocket == Int32(s) {
            transports[t].sendSocket = -1
            transports[t].remoteRtp = SocketAddress()
            transports[t].remoteRtcp = SocketAddress()
            if let state = webrtc[t].ice.selectedTupleLost() {
                worker.onEvent(.iceState(transport: transports[t].handle, state))
            }
        }
        _ = Glibc.shutdown(sockets[s].fd, Int32(SHUT_RDWR))
        finishTcpIfIdle(s)
    }

    mutating func finishTcpIfIdle(_ s: Int) {
        let c = Int(sockets[s].conn)
        guard sockets[s].inUse, sockets[s].closing, !sockets[s].armed, tcpConns[c].sending == 0 else { return }
        tcpConns[c] = TcpConnState()
        freeTcpConns.push(Int32(c))
        finishSocketClose(s)
    }

    /// Every connection bound to a closing transport goes with it.
    mutating func closeTcpConnections(transport t: Int) {
        guard freeTcpConns.available < freeTcpConns.capacity else { return }
        for c in 0..<freeTcpConns.capacity where tcpConns[c].inUse {
            let s = Int(tcpConns[c].socket)
            if sockets[s].bound, sockets[s].transport == UInt32(t) { closeTcpConnection(s) }
        }
    }

    /// A server's connections that never passed a STUN check go with it.
    mutating func closeTcpConnections(server h: Int) {
        for c in 0..<freeTcpConns.capacity where tcpConns[c].inUse {
            let s = Int(tcpConns[c].socket)
            if sockets[s].server == Int32(h) { closeTcpConnection(s) }
        }
    }

    /// An accepted connection that has not passed a STUN check in time is
    /// closed, so idle connections cannot exhaust the table.
    mutating func tcpIdleTimerFired(_ c: Int) {
        guard c < freeTcpConns.capacity, tcpConns[c].inUse, !tcpConns[c].verified else { return }
        let s = Int(tcpConns[c].socket)
        if rsfu_monotonic_ns() - tcpConns[c].acceptedNs >= Int64(settings.tcpIdleTimeoutMs) * 1_000_000 {
            counters.tcpReaped &+= 1
            closeTcpConnection(s)
        }
    }
}
