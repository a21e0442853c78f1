import RingSFUCShims
import Synchronization

/// SRTP crypto suites (RFC 3711, RFC 7714), with mediasoup's names.
package enum SrtpCryptoSuite: String, Sendable, CaseIterable, Codable {
    case aeadAes256Gcm = "AEAD_AES_256_GCM"
    case aeadAes128Gcm = "AEAD_AES_128_GCM"
    case aesCm128HmacSha1_80 = "AES_CM_128_HMAC_SHA1_80"
    case aesCm128HmacSha1_32 = "AES_CM_128_HMAC_SHA1_32"

    /// Master key plus master salt, in bytes.
    package var keyLength: Int {
        switch self {
        case .aeadAes256Gcm: 44
        case .aeadAes128Gcm: 28
        case .aesCm128HmacSha1_80, .aesCm128HmacSha1_32: 30
        }
    }

    package func applyPolicy(_ p: inout srtp_crypto_policy_t) {
        switch self {
        case .aeadAes256Gcm: srtp_crypto_policy_set_aes_gcm_256_16_auth(&p)
        case .aeadAes128Gcm: srtp_crypto_policy_set_aes_gcm_128_16_auth(&p)
        case .aesCm128HmacSha1_80: srtp_crypto_policy_set_rtp_default(&p)
        case .aesCm128HmacSha1_32: srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p)
        }
    }
}

package enum SrtpError: Error, Equatable, Sendable {
    case library(Int32)
    case badKeyLength(Int)
    case authFailure
    case replay
    case noRoom
    case other(Int32)
}

/// Process-wide libsrtp set-up: `srtp_init()` once, then the OpenSSL-backed
/// cipher and auth types (or the stock ones again). Sessions keep the types
/// that were installed when they were created.
package enum SrtpLibrary {
    private static let lock = Mutex<Bool?>(nil)

    /// Initialises libsrtp and installs the OpenSSL types (idempotent).
    package static func initialize(openssl: Bool = true) throws(SrtpError) {
        try lock.withLock { (state: inout Bool?) throws(SrtpError) in
            if state == openssl { return }
            let rc = rsfu_srtp_init()
            guard rc == 0 else { throw .library(rc) }
            let r = rsfu_srtp_use_openssl(openssl ? 1 : 0)
            guard r == 0 else { throw .library(r) }
            state = openssl
        }
    }
}

/// One direction of SRTP for any SSRC, owning its `SrtpContext` (tools and
/// tests; the forwarder keeps the contexts themselves): an outbound session
/// protects what we send, an inbound one unprotects what we receive (replay
/// protection on). Used from one thread; protect/unprotect work in place.
package struct SrtpSession: ~Copyable {
    package enum Direction: Sendable { case inbound, outbound }

    private let context: SrtpContext
    package let suite: SrtpCryptoSuite
    /// Bytes a protected packet may grow by (auth tag / GCM tag, MKI none).
    package static let maxTrailer = 32 // a 16-byte tag plus the SRTCP index; no MKI is used

    package init(suite: SrtpCryptoSuite, key: [UInt8], direction: Direction) throws(SrtpError) {
        guard key.count == suite.keyLength else { throw .badKeyLength(key.count) }
        guard let created = SrtpContext(SrtpKey(suite: suite, key: key), outbound: direction == .outbound) else {
            throw .library(-1)
        }
        context = created
        self.suite = suite
    }

    deinit { context.free() }

    @inline(__always)
    private static func apply(_ outcome: SrtpContext.Outcome, _ length: inout Int) throws(SrtpError) {
        switch outcome {
        case .ok(let n): length = n
        case .failed(let e): throw e
        }
    }

    /// Encrypts an RTP packet in place; `length` grows by the tag. The
    /// buffer must have `maxTrailer` bytes of room after the packet.
    @inline(__always)
    package func protect(_ packet: UnsafeMutableRawPointer, length: inout Int, capacity: Int) throws(SrtpError) {
        guard capacity - length >= Self.maxTrailer else { throw .noRoom }
        try Self.apply(context.protect(packet, length: length), &length)
    }

    /// Authenticates and decrypts an SRTP packet in place; `length` shrinks.
    @inline(__always)
    package func unprotect(_ packet: UnsafeMutableRawPointer, length: inout Int) throws(SrtpError) {
        try Self.apply(context.unprotect(packet, length: length), &length)
    }

    @inline(__always)
    package func protectRtcp(_ packet: UnsafeMutableRawPointer, length: inout Int, capacity: Int) throws(SrtpError) {
        guard capacity - length >= Self.maxTrailer + 4 else { throw .noRoom }
        try Self.apply(context.protectRtcp(packet, length: length), &length)
    }

    @inline(__always)
    package func unprotectRtcp(_ packet: UnsafeMutableRawPointer, length: inout Int) throws(SrtpError) {
        try Self.apply(context.unprotectRtcp(packet, length: length), &length)
    }
}

/// Raw libsrtp sessions for the forwarder's tables (a plain pointer per
/// transport and direction, no reference counting on the hot path).
package enum SrtpRaw {
    package static func create(_ key: SrtpKey, outbound: Bool) -> srtp_t? {
        guard key.key.count == key.suite.keyLength else { return nil }
        var policy = srtp_policy_t()
        key.suite.applyPolicy(&policy.rtp)
        (key.suite == .aesCm128HmacSha1_32 ? SrtpCryptoSuite.aesCm128HmacSha1_80 : key.suite).applyPolicy(&policy.rtcp)
        policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound
        policy.window_size = 1024
        policy.allow_repeat_tx = outbound ? 1 : 0
        var created: srtp_t? = nil
        var copy = key.key
        let rc = copy.withUnsafeMutableBufferPointer { buf -> srtp_err_status_t in
            policy.key = buf.baseAddress
            return srtp_create(&created, &policy)
        }
        return rc == srtp_err_status_ok ? created : nil
    }
}

/// One direction of SRTP as the forwarder keeps it per transport: a plain
/// value over the libsrtp session (no reference counting on the packet
/// path), freed explicitly with `free()`. Protect and unprotect work in
/// place and say what happened as a value, never by throwing.
package struct SrtpContext {
    package enum Outcome: Equatable {
        /// Done; the packet's new length.
        case ok(Int)
        case failed(SrtpError)
    }

    private let raw: srtp_t

    /// Nil when libsrtp refuses the key.
    package init?(_ key: SrtpKey, outbound: Bool) {
        guard let created = SrtpRaw.create(key, outbound: outbound) else { return nil }
        raw = created
    }

    package func free() { srtp_dealloc(raw) }

    /// One libsrtp call on the packet, in place.
    @inline(__always)
    private func run(_ call: (srtp_t?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?) -> srtp_err_status_t,
                     _ packet: UnsafeMutableRawPointer, _ length: Int) -> Outcome {
        var len = Int32(length)
        let rc = call(raw, packet, &len)
        switch rc {
        case srtp_err_status_ok: return .ok(Int(len))
        case srtp_err_status_auth_fail: return .failed(.authFailure)
        case srtp_err_status_replay_fail, srtp_err_status_replay_old: return .failed(.replay)
        default: return .failed(.other(Int32(rc.rawValue)))
        }
    }

    /// The buffer must have `SrtpSession.maxTrailer` bytes of room after the packet.
    @inline(__always)
    package func protect(_ packet: UnsafeMutableRawPointer, length: Int) -> Outcome { run(srtp_protect, packet, length) }

    @inline(__always)
    package func protectRtcp(_ packet: UnsafeMutableRawPointer, length: Int) -> Outcome { run(srtp_protect_rtcp, packet, length) }

    @inline(__always)
    package func unprotect(_ packet: UnsafeMutableRawPointer, length: Int) -> Outcome { run(srtp_unprotect, packet, length) }

    @inline(__always)
    package func unprotectRtcp(_ packet: UnsafeMutableRawPointer, length: Int) -> Outcome { run(srtp_unprotect_rtcp, packet, length) }
}
