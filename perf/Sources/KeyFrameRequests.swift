import RingSFUCShims
import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// What a browser publisher does with the SFU's key frame requests: the
/// next frame of the named stream is a key frame. The load generator reads
/// them from its socket (SRTCP with the key of the server's direction).
final class KeyFrameRequests {
    private let session: srtp_t?
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 8)
    private(set) var received = 0

    init(receiveKey: SrtpKey?) {
        session = receiveKey.flatMap { SrtpRaw.create($0, outbound: false) }
    }

    deinit {
        if let session { srtp_dealloc(session) }
        buffer.deallocate()
    }

    /// Reads what is queued on `fd` (at most 64 datagrams) and calls
    /// `request` with each SSRC a PLI or FIR names.
    func poll(_ fd: Int32, _ request: (UInt32) -> Void) {
        for _ in 0..<64 {
            let n = recv(fd, buffer, 2048, Int32(MSG_DONTWAIT))
            guard n > 0 else { return }
            // RTCP only (RFC 5761: second byte 192-223).
            guard n >= 8, (192...223).contains(buffer.load(fromByteOffset: 1, as: UInt8.self)) else { continue }
            var length = Int32(n)
            if let session { guard srtp_unprotect_rtcp(session, buffer, &length) == srtp_err_status_ok else { continue } }
            Self.forEachRequest(UnsafeRawPointer(buffer), count: Int(length)) { received += 1; request($0) }
        }
    }

    /// The SSRCs PLIs (PSFB FMT 1) and FIRs (PSFB FMT 4) of a compound
    /// packet ask a key frame for; stops at the first malformed part.
    static func forEachRequest(_ p: UnsafeRawPointer, count: Int, _ body: (UInt32) -> Void) {
        var o = 0
        while o + 4 <= count {
            let b0 = p.load(fromByteOffset: o, as: UInt8.self), type = p.load(fromByteOffset: o + 1, as: UInt8.self)
            let words = Int(p.load(fromByteOffset: o + 2, as: UInt8.self)) << 8 | Int(p.load(fromByteOffset: o + 3, as: UInt8.self))
            let size = 4 + words * 4
            guard b0 >> 6 == 2, o + size <= count else { return }
            if type == 206, b0 & 0x1F == 1, size >= 12 {
                body(readUInt32(p + o, 8))
            } else if type == 206, b0 & 0x1F == 4 {
                var e = o + 12
                while e + 8 <= o + size {
                    body(readUInt32(p, e))
                    e += 8
                }
            }
            o += size
        }
    }
}
