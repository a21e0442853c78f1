import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// WebRTC transports in the loop: ICE-lite (answer connectivity checks,
/// select the tuple), DTLS (handshake over the selected tuple, fingerprint
/// check, SRTP keys) and SRTP, all on the worker thread.
extension ForwarderLoop {
    mutating func addWebRtcTransport(_ h: Int, router: Int, fd: Int32?, tcpFd: Int32?, _ credentials: IceCredentials) {
        addTransport(h, router: router, rtpFd: fd, rtcpFd: nil, comedia: false)
        transports[h].webrtc = true
        transports[h].srtpRequired = true
        // Media goes out on the socket of the tuple ICE selects.
        transports[h].sendSocket = -1
        if let tcpFd { transports[h].tcpListener = addTcpListener(fd: tcpFd, transport: h, server: -1) }
        var w = WebRtcState()
        setCredentials(&w, credentials)
        webrtc[h] = w
    }

    func setCredentials(_ w: inout WebRtcState, _ c: IceCredentials) {
        w.ufragLength = min(c.usernameFragment.count, 64)
        for i in 0..<w.ufragLength { w.ufrag[i] = c.usernameFragment[i] }
        w.passwordLength = min(c.password.count, 64)
        for i in 0..<w.passwordLength { w.password[i] = c.password[i] }
    }

    mutating func restartIce(_ h: Int, _ c: IceCredentials) {
        guard transports[h].inUse, transports[h].webrtc else { return }
        setCredentials(&webrtc[h], c)
    }

    mutating func connectWebRtc(_ h: Int, client: Bool, algorithm: String, fingerprint: String) {
        guard transports[h].inUse, transports[h].webrtc, webrtc[h].dtlsRole < 0 else { return }
        webrtc[h].dtlsRole = client ? 1 : 0
        let alg = Array(algorithm.utf8.prefix(15))
        for (i, b) in alg.enumerated() { webrtc[h].fingerprintAlgorithm[i] = b }
        let fp = Array(fingerprint.uppercased().utf8.prefix(191))
        for (i, b) in fp.enumerated() { webrtc[h].fingerprint[i] = b }
        webrtc[h].fingerprintLength = fp.count
        maybeStartDtls(h)
    }

    mutating func closeWebRtc(_ h: Int) {
        if let d = webrtc[h].dtls { d.free() }
        timers.cancel(webrtc[h].dtlsTimer)
        webrtc[h] = WebRtcState()
    }

    // MARK: - Receive

    @inline(__always)
    mutating func processWebRtc(_ packet: UnsafeMutableRawPointer, size: Int, transport t: Int, socket: Int, name: UnsafeMutableRawPointer, nameLength: Int) {
        let fromSelected = transports[t].sendSocket == Int32(socket) && transports[t].remoteRtp.isSet
            && transports[t].remoteRtp.sameEndpoint(raw: name, length: nameLength)
        let kind = PacketClass.classify(packet, count: size)
        switch kind {
        case .stun:
            handleStun(packet, size: size, transport: t, socket: socket, source: SocketAddress(raw: name, length: nameLength))
        case .dtls:
            // Nothing more for a failed or closed session (it would only pile up).
            guard fromSelected, let d = webrtc[t].dtls, webrtc[t].dtlsState.open else { counters.dropNotReady &+= 1; return }
            var progress = d.receive(packet, count: size)
            if progress == .connected && webrtc[t].dtlsState == .connected { progress = readDtlsData(t, d) }
            afterDtls(t, progress)
        case .rtp, .rtcp:
            // No media before DTLS gave keys, and only from the selected tuple.
            guard fromSelected, transports[t].srtpReceive != nil else { counters.dropNotReady &+= 1; return }
            receiveMedia(packet, size: size, transport: t, rtcp: kind == .rtcp)
        case .unknown:
            counters.dropNotRtp &+= 1
        }
    }

    /// RFC 8445 lite: a Binding request for our ufrag with valid integrity
    /// (and fingerprint, when present) gets a success response; anything
    /// else is dropped without an answer. USE-CANDIDATE, or the first valid
    /// check, selects the tuple.
    mutating func handleStun(_ packet: UnsafeMutableRawPointer, size: Int, transport t: Int, socket: Int, source: SocketAddress) {
        guard let m = try? StunMessage.parse(packet, count: size), m.messageClass == .request, m.method == StunMessage.binding else {
            counters.dropStun &+= 1
            return
        }
        var valid = false
        withUnsafeBytes(of: webrtc[t].ufrag) { ufrag in
            withUnsafeBytes(of: webrtc[t].password) { password in
                let u = UnsafeRawBufferPointer(rebasing: ufrag[0..<webrtc[t].ufragLength])
                let p = UnsafeRawBufferPointer(rebasing: password[0..<webrtc[t].passwordLength])
                valid = m.usernameStarts(with: u, in: packet) && m.checkIntegrity(packet, key: p)
                    && (m.fingerprintOffset == nil || m.checkFingerprint(packet))
            }
        }
        guard valid else { counters.dropStun &+= 1; return }
        if sockets[socket].kind == .tcpConnection {
            // The connection speaks ICE: it is no longer reaped or capped.
            tcpConns[Int(sockets[socket].conn)].verified = true
            if !sockets[socket].bound {
                // A server's connection proved which transport it belongs to.
                sockets[socket].transport = UInt32(t)
                sockets[socket].bound = true
            }
        }
        ensureConsentTimer()
        // The response goes back to where the request came from.
        let slot = freeSendSlots.pop()
        if slot >= 0 {
            let out = sendSlab.slot(Int(slot))
            let n = withUnsafeBytes(of: webrtc[t].password) { password in
                StunWriter.bindingSuccess(to: packet, mapped: source, password: UnsafeRawBufferPointer(rebasing: password[0..<webrtc[t].passwordLength]), into: out, capacity: settings.bufferSize)
            }
            if n > 0 { sendRaw(slot: slot, length: n, socket: Int32(socket), to: source) } else { freeSendSlots.push(slot) }
        } else {
            counters.dropSendPoolEmpty &+= 1
        }
        // Nomination: USE-CANDIDATE, or the first valid check selects.
        let selected = transports[t].sendSocket == Int32(socket) && transports[t].remoteRtp == source
        let outcome = webrtc[t].ice.validCheck(nowNs: rsfu_monotonic_ns(), useCandidate: m.useCandidate,
                                               onSelectedTuple: selected, anySelected: transports[t].remoteRtp.isSet)
        if outcome.select {
            transports[t].remoteRtp = source
            transports[t].remoteRtcp = source
            transports[t].sendSocket = Int32(socket)
            let tcp = sockets[socket].kind == .tcpConnection
            registerTuple(t, source, tcp: tcp)
            worker.onEvent(.iceSelectedTuple(transport: transports[t].handle, source, tcp: tcp))
        }
        if let state = outcome.state { worker.onEvent(.iceState(transport: transports[t].handle, state)) }
        if outcome.nominated { maybeStartDtls(t) }
    }

    // MARK: - DTLS

    mutating func maybeStartDtls(_ t: Int) {
        guard webrtc[t].dtls == nil, webrtc[t].dtlsRole >= 0, transports[t].remoteRtp.isSet else { return }
        guard let d = try? DtlsSession(context: worker.dtls, role: webrtc[t].dtlsRole == 1 ? .client : .server) else {
            webrtc[t].dtlsState = .failed
            worker.onEvent(.dtlsState(transport: transports[t].handle, .failed))
            return
        }
        webrtc[t].dtls = d
        webrtc[t].dtlsState = .connecting
        worker.onEvent(.dtlsState(transport: transports[t].handle, .connecting))
        afterDtls(t, d.start())
    }

    /// Takes the application data of a connected DTLS session: SCTP
    /// packets for the control layer when the transport has SCTP, discarded
    /// otherwise (a peer must not fill our buffers). Returns `.closed`
    /// when the peer closed, else `.connected`.
    mutating func readDtlsData(_ t: Int, _ d: DtlsSession) -> DtlsSession.Progress {
        let slot = freeSendSlots.pop()
        guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return .connected }
        defer { freeSendSlots.push(slot) }
        let buffer = sendSlab.slot(Int(slot))
        while true {
            let n: Int
            switch d.read(into: buffer, capacity: settings.bufferSize) {
            case .closed: return .closed
            case .none: return .connected
            case .data(let count): n = count
            }
            if webrtc[t].sctp {
                // Data channel traffic leaves the forwarder as a copy (it is
                // handled by the control layer's SCTP stack, not forwarded here).
                handOverSctp(t, buffer, n)
            } else {
                counters.dropNotReady &+= 1
            }
        }
    }

    /// Gives an SCTP packet to the control layer, unless too many bytes are
    /// already waiting there (a flood is dropped; SCTP retransmits).
    mutating func handOverSctp(_ t: Int, _ data: UnsafeRawPointer, _ count: Int) {
        guard worker.sctpQueuedBytes.load(ordering: .relaxed) < ForwarderWorker.sctpQueueLimit else {
            counters.dropSctpBacklog &+= 1
            return
        }
        worker.sctpQueuedBytes.add(count, ordering: .relaxed)
        worker.onEvent(.sctpData(transport: transports[t].handle, Array(UnsafeRawBufferPointer(start: data, count: count))))
    }

    /// Sends one SCTP packet as a DTLS record on a connected transport.
    mutating func sendSctp(transport t: Int, _ packet: [UInt8]) {
        guard transports[t].inUse else { return }
        if transports[t].rawSctp {
            // Plain UDP: the packet as it is, to the remote tuple.
            guard transports[t].remoteRtp.isSet, transports[t].rtpSocket >= 0, packet.count <= settings.bufferSize else { return }
            let slot = freeSendSlots.pop()
            guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
            packet.withUnsafeBytes { sendSlab.slot(Int(slot)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            sendRaw(slot: slot, length: packet.count, socket: transports[t].rtpSocket, to: transports[t].remoteRtp)
            return
        }
        guard transports[t].webrtc, webrtc[t].dtlsState == .connected, let d = webrtc[t].dtls else { return }
        // One record per datagram: without a free slot for it, the record
        // would wait and be cut across datagrams with the next one.
        guard freeSendSlots.available > 0 else { counters.dropSendPoolEmpty &+= 1; return }
        let ok = packet.withUnsafeBytes { d.send($0) }
        guard ok else { counters.dropSendError &+= 1; return }
        afterDtls(t, .pending)
    }

    /// Sends what DTLS produced, handles completion, re-arms its timer.
    mutating func afterDtls(_ t: Int, _ progress: DtlsSession.Progress) {
        guard let d = webrtc[t].dtls else { return }
        while true {
            let slot = freeSendSlots.pop()
            guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; break }
            let out = sendSlab.slot(Int(slot))
            let n = d.takeOutput(into: out, capacity: settings.bufferSize)
            if n == 0 { freeSendSlots.push(slot); break }
            sendRaw(slot: slot, length: n, socket: transports[t].sendSocket, to: transports[t].remoteRtp)
        }
        switch progress {
        case .connected where webrtc[t].dtlsState == .connecting:
            dtlsConnected(t, d)
        case .failed where webrtc[t].dtlsState == .new || webrtc[t].dtlsState == .connecting, .closed:
            webrtc[t].dtlsState = progress == .closed ? .closed : .failed
            worker.onEvent(.dtlsState(transport: transports[t].handle, webrtc[t].dtlsState))
        default:
            break
        }
        timers.cancel(webrtc[t].dtlsTimer)
        webrtc[t].dtlsTimer = -1
        if let ms = d.timeoutMs, webrtc[t].dtlsState == .connecting {
            webrtc[t].dtlsTimer = timers.schedule(.init(kind: TimerKind.dtlsRetransmit.rawValue, argument: UInt32(t)), at: rsfu_monotonic_ns() + Int64(ms) * 1_000_000)
        }
    }

    /// The handshake finished: the peer's certificate must match the
    /// signalled fingerprint before any media flows.
    mutating func dtlsConnected(_ t: Int, _ d: DtlsSession) {
        // Once per transport, off the packet path: small allocations are fine.
        let algorithm = String(decoding: (0..<16).map { webrtc[t].fingerprintAlgorithm[$0] }.prefix { $0 != 0 }, as: UTF8.self)
        let expected = String(decoding: (0..<webrtc[t].fingerprintLength).map { webrtc[t].fingerprint[$0] }, as: UTF8.self)
        guard d.peerFingerprint(algorithm) == expected, let keys = d.srtpKeys() else {
            webrtc[t].dtlsState = .failed
            worker.onEvent(.dtlsState(transport: transports[t].handle, .failed))
            return
        }
        transports[t].srtpSend = SrtpContext(keys.send, outbound: true)
        transports[t].srtpReceive = SrtpContext(keys.receive, outbound: false)
        if transports[t].srtpSend == nil || transports[t].srtpReceive == nil { srtpFailed(t, "libsrtp refused the DTLS-SRTP keys") }
        webrtc[t].dtlsState = .connected
        worker.onEvent(.dtlsState(transport: transports[t].handle, .connected))
    }

    mutating func dtlsTimerFired(_ t: Int) {
        guard transports[t].inUse, transports[t].webrtc, let d = webrtc[t].dtls else { return }
        webrtc[t].dtlsTimer = -1
        afterDtls(t, d.handleTimeout() ? .pending : .failed)
    }

    /// RFC 7675: a peer that stops checking for 30 s loses consent; the
    /// transport goes to "disconnected" (as mediasoup does) until checks
    /// resume. One worker-wide timer scans the WebRTC transports each second
    /// while any exist.
    mutating func ensureConsentTimer() {
        guard !consentTimerArmed else { return }
        consentTimerArmed = true
        timers.schedule(.init(kind: TimerKind.iceConsent.rawValue, argument: 0), at: rsfu_monotonic_ns() + 1_000_000_000)
    }

    mutating func consentTimerFired() {
        consentTimerArmed = false
        let now = rsfu_monotonic_ns()
        var any = false
        for t in 0..<Int(settings.maxTransports) where transports[t].inUse && transports[t].webrtc {
            any = true
            if let state = webrtc[t].ice.consentCheck(nowNs: now, timeoutNs: consentTimeoutNs) {
                worker.onEvent(.iceState(transport: transports[t].handle, state))
            }
        }
        if any { ensureConsentTimer() }
    }

    /// A single datagram (STUN response, DTLS flight) not tied to a consumer.
    mutating func sendRaw(slot: Int32, length: Int, socket: Int32, to destination: SocketAddress) {
        if socket >= 0, sockets[Int(socket)].kind == .tcpConnection {
            tcpWrite(socket: Int(socket), sendSlab.slot(Int(slot)), length: length)
            freeSendSlots.push(slot)
            return
        }
        let m = freeMessages.pop()
        guard m >= 0, socket >= 0 else {
            freeSendSlots.push(slot)
            counters.dropSendPoolEmpty &+= 1
            return
        }
        let message = SendMessage(messageSlab.slot(Int(m)))
        message.begin(destination: destination, socket: socket, consumer: -1)
        message.append(slot: slot, data: sendSlab.slot(Int(slot)), length: length)
        openMessages[openMessageCount] = m
        openMessageCount += 1
    }
}
