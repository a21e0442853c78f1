import RingSFUCShims

/// A worker's DTLS identity: an ECDSA P-256 self-signed certificate (or one
/// from PEM files) and the OpenSSL context built on it.
package final class DtlsContext: @unchecked Sendable {
    let raw: OpaquePointer

    package enum Failure: Error, Sendable { case openssl }

    package init(certificateFile: String? = nil, privateKeyFile: String? = nil) throws(Failure) {
        guard let c = rsfu_dtls_ctx_new(certificateFile, privateKeyFile) else { throw .openssl }
        raw = c
    }

    deinit { rsfu_dtls_ctx_free(raw) }

    /// Our certificate's fingerprint as signalled in `dtlsParameters`
    /// ("AB:CD:..."), for sha-1, sha-224, sha-256, sha-384 or sha-512.
    package func fingerprint(_ algorithm: String) -> String? {
        var buf = [CChar](repeating: 0, count: 200)
        guard rsfu_dtls_ctx_fingerprint(raw, algorithm, &buf, buf.count) == 0 else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package static let algorithms = ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]
}

/// One DTLS 1.2 association (RFC 5764), sans-I/O, as the forwarder holds it
/// in its tables: a plain value over the OpenSSL session (no reference
/// counting on the packet path), freed explicitly with `free()`. Feed it
/// received records, send what it outputs, drive its retransmissions with
/// `timeoutMs`/`handleTimeout`; once connected it yields the SRTP keys.
package struct DtlsSession {
    package enum Role: Sendable { case client, server }

    /// What the handshake did with the last input.
    package enum Progress: Equatable, Sendable {
        /// Still handshaking (or nothing changed).
        case pending
        /// The handshake just completed, or records were read on a
        /// connected session.
        case connected
        /// The handshake failed (bad records, certificate, timeout).
        case failed
        /// The peer sent close_notify.
        case closed

        init(_ code: Int32) {
            switch code {
            case 1: self = .connected
            case -1: self = .failed
            case -2: self = .closed
            default: self = .pending
            }
        }
    }

    /// What a read of application data found.
    package enum Read: Equatable, Sendable {
        case data(Int)
        case none
        case closed
    }

    private let raw: OpaquePointer
    package let role: Role

    /// The session; the context must outlive it (the forwarder's worker
    /// context does).
    package init(context: DtlsContext, role: Role, mtu: Int = 1200) throws(DtlsContext.Failure) {
        guard let d = rsfu_dtls_new(context.raw, role == .client ? 1 : 0, Int32(mtu)) else { throw .openssl }
        rsfu_dtls_set_backoff(d) { _, previous in DtlsBackoff.next(afterMicroseconds: previous) }
        raw = d
        self.role = role
    }

    package func free() { rsfu_dtls_free(raw) }

    /// Starts the handshake (a client produces its first flight).
    package func start() -> Progress { Progress(rsfu_dtls_start(raw)) }

    /// Feeds one received datagram of DTLS records.
    package func receive(_ data: UnsafeRawPointer, count: Int) -> Progress {
        Progress(rsfu_dtls_feed(raw, data.assumingMemoryBound(to: UInt8.self), count))
    }

    /// Reads one application data record into `buffer`.
    package func read(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Read {
        let n = rsfu_dtls_read(raw, buffer.assumingMemoryBound(to: UInt8.self), capacity)
        if n == -2 { return .closed }
        return n > 0 ? .data(Int(n)) : .none
    }

    /// Sends application data as one record (take it with `takeOutput`).
    package func send(_ data: UnsafeRawBufferPointer) -> Bool {
        rsfu_dtls_write(raw, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count) == 0
    }

    /// Queues close_notify (a connected session only): the peer learns at
    /// once that the transport closed, instead of from a timeout.
    package func close() { rsfu_dtls_close(raw) }

    /// Copies pending output into `buffer`; returns its length (0: none).
    package func takeOutput(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        Int(rsfu_dtls_take_output(raw, buffer.assumingMemoryBound(to: UInt8.self), capacity))
    }

    /// Milliseconds until a retransmission is due, nil if none.
    package var timeoutMs: Int? {
        let t = rsfu_dtls_timeout_ms(raw)
        return t < 0 ? nil : Int(t)
    }

    /// A retransmission is due; false when the handshake gave up.
    package func handleTimeout() -> Bool { rsfu_dtls_handle_timeout(raw) >= 0 }

    /// The peer certificate's fingerprint, to compare with the signalled one.
    package func peerFingerprint(_ algorithm: String) -> String? {
        var buf = [CChar](repeating: 0, count: 200)
        guard rsfu_dtls_peer_fingerprint(raw, algorithm, &buf, buf.count) == 0 else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The negotiated SRTP suite and keys (ours to send with, the peer's).
    package func srtpKeys() -> (suite: SrtpCryptoSuite, send: SrtpKey, receive: SrtpKey)? {
        var local = [UInt8](repeating: 0, count: 64), remote = [UInt8](repeating: 0, count: 64)
        var length = 0
        let profile = rsfu_dtls_srtp_keys(raw, role == .client ? 1 : 0, &local, &remote, &length)
        let suite: SrtpCryptoSuite
        switch profile {
        case 0x0001: suite = .aesCm128HmacSha1_80
        case 0x0002: suite = .aesCm128HmacSha1_32
        case 0x0007: suite = .aeadAes128Gcm
        case 0x0008: suite = .aeadAes256Gcm
        default: return nil
        }
        return (suite, SrtpKey(suite: suite, key: Array(local[0..<length])), SrtpKey(suite: suite, key: Array(remote[0..<length])))
    }
}

/// An owning DTLS endpoint for tools and tests: a `DtlsSession` that keeps
/// its context alive, tracks its state and collects application data, and
/// frees the session when it goes away.
package struct DtlsTransport: ~Copyable {
    package typealias Role = DtlsSession.Role
    package enum State: Equatable, Sendable { case connecting, connected, failed, closed }

    private let session: DtlsSession
    package var role: Role { session.role }
    package private(set) var state: State = .connecting
    // Keeps the context (certificate, SSL_CTX) alive as long as the session.
    private let context: DtlsContext

    package init(context: DtlsContext, role: Role, mtu: Int = 1200) throws(DtlsContext.Failure) {
        session = try DtlsSession(context: context, role: role, mtu: mtu)
        self.context = context
    }

    deinit { session.free() }

    private mutating func update(_ p: DtlsSession.Progress) -> State {
        switch p {
        case .connected: state = .connected
        case .closed: state = .closed
        case .failed: state = .failed
        case .pending: break
        }
        return state
    }

    /// Starts the handshake (a client produces its first flight).
    @discardableResult
    package mutating func start() -> State { update(session.start()) }

    /// Feeds one received datagram of DTLS records.
    @discardableResult
    package mutating func receive(_ data: UnsafeRawPointer, count: Int) -> State {
        let r = update(session.receive(data, count: count))
        guard r == .connected else { return r }
        // Application data is kept for the caller; an alert may close.
        var record = [UInt8](repeating: 0, count: 2048)
        while true {
            let read = record.withUnsafeMutableBytes { session.read(into: $0.baseAddress!, capacity: $0.count) }
            guard case .data(let n) = read else {
                if read == .closed { state = .closed }
                break
            }
            applicationData.append(Array(record[0..<n]))
        }
        return state
    }

    /// Application data records received since the caller last emptied it.
    package var applicationData: [[UInt8]] = []

    /// Sends application data as one record (take it with `takeOutput`).
    package func send(applicationData data: [UInt8]) -> Bool {
        data.withUnsafeBytes { session.send($0) }
    }

    /// Queues close_notify (see `DtlsSession.close`).
    package func close() { session.close() }

    /// Copies pending output into `buffer`; returns its length (0: none).
    package func takeOutput(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        session.takeOutput(into: buffer, capacity: capacity)
    }

    /// Milliseconds until a retransmission is due, nil if none.
    package var timeoutMs: Int? { session.timeoutMs }

    @discardableResult
    package mutating func handleTimeout() -> State {
        if !session.handleTimeout() { state = .failed }
        return state
    }

    package func peerFingerprint(_ algorithm: String) -> String? { session.peerFingerprint(algorithm) }

    package func srtpKeys() -> (suite: SrtpCryptoSuite, send: SrtpKey, receive: SrtpKey)? { session.srtpKeys() }
}

/// When a DTLS flight that got no answer is sent again: 100 ms after the
/// first, doubling up to 4 s (OpenSSL's own starts at 1 s, so one lost
/// datagram would hold a call's media back for a second). OpenSSL gives
/// up after 12 retransmissions, about 30 s on this schedule.
package enum DtlsBackoff {
    package static let firstMicroseconds: UInt32 = 100_000
    package static let maxMicroseconds: UInt32 = 4_000_000

    /// The next timeout; `previous` is 0 for a flight's first.
    package static func next(afterMicroseconds previous: UInt32) -> UInt32 {
        previous == 0 ? firstMicroseconds : min(maxMicroseconds, previous &* 2)
    }
}
