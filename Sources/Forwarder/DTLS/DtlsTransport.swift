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

/// One DTLS 1.2 association (RFC 5764), sans-I/O: feed it received
/// records, send what it outputs, drive its retransmissions with
/// `timeoutMs`/`handleTimeout`. Once connected it yields the SRTP keys.
package struct DtlsTransport: ~Copyable {
    package enum Role: Sendable { case client, server }
    package enum State: Equatable, Sendable { case connecting, connected, failed, closed }

    private let raw: OpaquePointer
    package let role: Role
    package private(set) var state: State = .connecting
    // Keeps the context (certificate, SSL_CTX) alive as long as the session.
    private let context: DtlsContext

    package init(context: DtlsContext, role: Role, mtu: Int = 1200) throws(DtlsContext.Failure) {
        guard let d = rsfu_dtls_new(context.raw, role == .client ? 1 : 0, Int32(mtu)) else { throw .openssl }
        raw = d
        self.role = role
        self.context = context
    }

    deinit { rsfu_dtls_free(raw) }

    private mutating func update(_ r: Int32) -> State {
        switch r {
        case 1: state = .connected
        case -2: state = .closed
        case -1: state = .failed
        default: break
        }
        return state
    }

    /// Starts the handshake (a client produces its first flight).
    @discardableResult
    package mutating func start() -> State { update(rsfu_dtls_start(raw)) }

    /// Feeds one received datagram of DTLS records.
    @discardableResult
    package mutating func receive(_ data: UnsafeRawPointer, count: Int) -> State {
        let r = update(rsfu_dtls_feed(raw, data.assumingMemoryBound(to: UInt8.self), count))
        guard r == .connected else { return r }
        // Application data is kept for the caller; an alert may close.
        var record = [UInt8](repeating: 0, count: 2048)
        while true {
            let n = rsfu_dtls_read(raw, &record, record.count)
            if n == -2 { state = .closed }
            if n <= 0 { break }
            applicationData.append(Array(record[0..<Int(n)]))
        }
        return state
    }

    /// Application data records received since the caller last emptied it.
    package var applicationData: [[UInt8]] = []

    /// Sends application data as one record (take it with `takeOutput`).
    package func send(applicationData data: [UInt8]) -> Bool {
        data.withUnsafeBufferPointer { rsfu_dtls_write(raw, $0.baseAddress, $0.count) == 0 }
    }

    /// Copies pending output into `buffer`; returns its length (0: none).
    package func takeOutput(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        Int(rsfu_dtls_take_output(raw, buffer.assumingMemoryBound(to: UInt8.self), capacity))
    }

    /// Milliseconds until a retransmission is due, nil if none.
    package var timeoutMs: Int? {
        let t = rsfu_dtls_timeout_ms(raw)
        return t < 0 ? nil : Int(t)
    }

    @discardableResult
    package mutating func handleTimeout() -> State {
        if rsfu_dtls_handle_timeout(raw) < 0 { state = .failed }
        return state
    }

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
