import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// Why a datagram is not a usable STUN message.
package enum StunParseError: Error, Equatable, Sendable {
    case tooShort
    case notStun
    case badLength
    case badAttribute
    case attributeAfterIntegrity
}

/// A STUN message (RFC 5389 / RFC 8489) as ICE-lite needs it: the header,
/// and where the attributes that matter sit in the buffer. Parsing is
/// bounds-checked and allocation-free; integrity and fingerprint are
/// verified against the original bytes.
package struct StunMessage: Sendable, Equatable {
    package static let headerSize = 20
    package static let magicCookie: UInt32 = 0x2112_A442

    package enum Class: UInt16, Sendable { case request = 0, indication = 1, success = 2, error = 3 }

    package var method: UInt16
    package var messageClass: Class
    /// Offset of the 12-byte transaction id (always 8).
    package var transactionIdOffset: Int { 8 }
    package var username: (offset: Int, length: Int)?
    package var integrityOffset: Int?
    package var fingerprintOffset: Int?
    package var priority: UInt32?
    package var useCandidate = false
    package var iceControlling: UInt64?
    package var iceControlled: UInt64?
    package var errorCode: Int?
    package var length: Int

    package static let binding: UInt16 = 0x001

    package static func == (a: StunMessage, b: StunMessage) -> Bool {
        a.method == b.method && a.messageClass == b.messageClass && a.username?.offset == b.username?.offset
            && a.username?.length == b.username?.length && a.integrityOffset == b.integrityOffset
            && a.fingerprintOffset == b.fingerprintOffset && a.priority == b.priority && a.useCandidate == b.useCandidate
            && a.iceControlling == b.iceControlling && a.iceControlled == b.iceControlled && a.errorCode == b.errorCode && a.length == b.length
    }

    enum Attr: UInt16 {
        case mappedAddress = 0x0001, username = 0x0006, messageIntegrity = 0x0008, errorCode = 0x0009
        case xorMappedAddress = 0x0020, priority = 0x0024, useCandidate = 0x0025
        case fingerprint = 0x8028, iceControlled = 0x8029, iceControlling = 0x802A
    }

    package static func parse(_ p: UnsafeRawPointer, count: Int) throws(StunParseError) -> StunMessage {
        guard count >= headerSize else { throw .tooShort }
        let type = readUInt16(p, 0)
        guard type & 0xC000 == 0, readUInt32(p, 4) == magicCookie else { throw .notStun }
        let bodyLength = Int(readUInt16(p, 2))
        guard bodyLength % 4 == 0, headerSize + bodyLength == count else { throw .badLength }
        // Method bits are interleaved with the two class bits (C1 at 8, C0 at 4).
        let cls = ((type >> 7) & 0x2) | ((type >> 4) & 0x1)
        let method = (type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80)
        var m = StunMessage(method: method, messageClass: Class(rawValue: cls)!, length: count)
        var i = headerSize
        while i < count {
            guard i + 4 <= count else { throw .badAttribute }
            let attrType = readUInt16(p, i)
            let attrLen = Int(readUInt16(p, i + 2))
            let value = i + 4
            guard value + attrLen <= count else { throw .badAttribute }
            // After MESSAGE-INTEGRITY only FINGERPRINT may follow.
            if m.integrityOffset != nil && attrType != Attr.fingerprint.rawValue { throw .attributeAfterIntegrity }
            if m.fingerprintOffset != nil { throw .attributeAfterIntegrity }
            switch Attr(rawValue: attrType) {
            case .username:
                m.username = (value, attrLen)
            case .messageIntegrity:
                guard attrLen == 20 else { throw .badAttribute }
                m.integrityOffset = i
            case .fingerprint:
                guard attrLen == 4 else { throw .badAttribute }
                m.fingerprintOffset = i
            case .priority:
                guard attrLen == 4 else { throw .badAttribute }
                m.priority = readUInt32(p, value)
            case .useCandidate:
                m.useCandidate = true
            case .iceControlling:
                guard attrLen == 8 else { throw .badAttribute }
                m.iceControlling = UInt64(readUInt32(p, value)) << 32 | UInt64(readUInt32(p, value + 4))
            case .iceControlled:
                guard attrLen == 8 else { throw .badAttribute }
                m.iceControlled = UInt64(readUInt32(p, value)) << 32 | UInt64(readUInt32(p, value + 4))
            case .errorCode:
                guard attrLen >= 4 else { throw .badAttribute }
                let b2 = p.load(fromByteOffset: value + 2, as: UInt8.self) & 0x07
                let b3 = p.load(fromByteOffset: value + 3, as: UInt8.self)
                m.errorCode = Int(b2) * 100 + Int(b3)
            default:
                break // unknown attributes are skipped
            }
            i = value + ((attrLen + 3) & ~3)
        }
        return m
    }

    /// Whether the USERNAME equals `local:<anything>` for our ufrag, as ICE
    /// requires for requests we receive (RFC 8445 7.3).
    package func usernameStarts(with ufrag: UnsafeRawBufferPointer, in p: UnsafeRawPointer) -> Bool {
        guard let (offset, length) = username, length > ufrag.count,
              p.load(fromByteOffset: offset + ufrag.count, as: UInt8.self) == UInt8(ascii: ":") else { return false }
        return memcmp(p + offset, ufrag.baseAddress!, ufrag.count) == 0
    }

    /// Verifies MESSAGE-INTEGRITY with the short-term `key` (the password).
    package func checkIntegrity(_ p: UnsafeRawPointer, key: UnsafeRawBufferPointer) -> Bool {
        guard let mi = integrityOffset else { return false }
        // The length field must cover the message up to and including
        // MESSAGE-INTEGRITY, whatever follows it.
        var header = InlineArray<20, UInt8>(repeating: 0)
        for k in 0..<20 { header[k] = p.load(fromByteOffset: k, as: UInt8.self) }
        let adjusted = UInt16(mi + 24 - Self.headerSize)
        header[2] = UInt8(adjusted >> 8)
        header[3] = UInt8(adjusted & 0xFF)
        var expected = InlineArray<20, UInt8>(repeating: 0)
        withUnsafeBytes(of: &header) { h in
            withUnsafeMutableBytes(of: &expected) { out in
                rsfu_hmac_sha1_2(key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count,
                                 h.baseAddress!.assumingMemoryBound(to: UInt8.self), 20,
                                 (p + 20).assumingMemoryBound(to: UInt8.self), mi - 20,
                                 out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        var diff: UInt8 = 0
        for k in 0..<20 { diff |= expected[k] ^ p.load(fromByteOffset: mi + 4 + k, as: UInt8.self) }
        let ok = diff == 0
        return ok
    }

    /// Verifies FINGERPRINT (CRC-32 of the message before it, XOR 0x5354554E).
    package func checkFingerprint(_ p: UnsafeRawPointer) -> Bool {
        guard let fp = fingerprintOffset, fp + 8 == length else { return false }
        let crc = Crc32.checksum(p, count: fp) ^ 0x5354_554E
        return crc == readUInt32(p, fp + 4)
    }
}

/// CRC-32 (IEEE 802.3, reflected), table computed once.
package enum Crc32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    package static func checksum(_ p: UnsafeRawPointer, count: Int) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for i in 0..<count {
                c = t[Int((c ^ UInt32(p.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
            }
        }
        return c ^ 0xFFFF_FFFF
    }
}

/// Writes STUN responses into caller-provided memory.
package enum StunWriter {
    /// A Binding success response to `request` (same transaction id) with
    /// XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY (our password) and FINGERPRINT.
    /// Returns its length, or 0 if `capacity` is too small.
    package static func bindingSuccess(to request: UnsafeRawPointer, mapped: borrowing SocketAddress, password: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        let v6 = mapped.family == AF_INET6
        let addrLen = v6 ? 20 : 8
        let total = 20 + (4 + addrLen) + 24 + 8
        guard capacity >= total else { return 0 }
        writeUInt16(out, 0, 0x0101)
        writeUInt32(out, 4, StunMessage.magicCookie)
        out.advanced(by: 8).copyMemory(from: request + 8, byteCount: 12)
        // XOR-MAPPED-ADDRESS.
        var i = 20
        writeUInt16(out, i, StunMessage.Attr.xorMappedAddress.rawValue)
        writeUInt16(out, i + 2, UInt16(addrLen))
        out.storeBytes(of: 0, toByteOffset: i + 4, as: UInt8.self)
        out.storeBytes(of: v6 ? 0x02 : 0x01, toByteOffset: i + 5, as: UInt8.self)
        writeUInt16(out, i + 6, mapped.port ^ 0x2112)
        let storage = mapped.storage
        withUnsafeBytes(of: storage) { raw in
            if v6 {
                // sin6_addr at offset 8 of sockaddr_in6; XOR with cookie + transaction id.
                for k in 0..<16 {
                    let key = k < 4 ? out.load(fromByteOffset: 4 + k, as: UInt8.self) : out.load(fromByteOffset: 8 + k - 4, as: UInt8.self)
                    out.storeBytes(of: raw[8 + k] ^ key, toByteOffset: i + 8 + k, as: UInt8.self)
                }
            } else {
                // sin_addr at offset 4 of sockaddr_in.
                for k in 0..<4 { out.storeBytes(of: raw[4 + k] ^ out.load(fromByteOffset: 4 + k, as: UInt8.self), toByteOffset: i + 8 + k, as: UInt8.self) }
            }
        }
        i += 4 + addrLen
        // MESSAGE-INTEGRITY over everything so far, length covering it.
        writeUInt16(out, 2, UInt16(i + 24 - 20))
        writeUInt16(out, i, StunMessage.Attr.messageIntegrity.rawValue)
        writeUInt16(out, i + 2, 20)
        rsfu_hmac_sha1(password.baseAddress!.assumingMemoryBound(to: UInt8.self), password.count, out.assumingMemoryBound(to: UInt8.self), i, (out + i + 4).assumingMemoryBound(to: UInt8.self))
        i += 24
        // FINGERPRINT, length now covering it too.
        writeUInt16(out, 2, UInt16(i + 8 - 20))
        writeUInt16(out, i, StunMessage.Attr.fingerprint.rawValue)
        writeUInt16(out, i + 2, 4)
        writeUInt32(out, i + 4, Crc32.checksum(out, count: i) ^ 0x5354_554E)
        return i + 8
    }
}

extension StunWriter {
    /// A Binding request as an ICE agent sends it (used by tests and by
    /// tools): USERNAME, PRIORITY, ICE-CONTROLLING, optional USE-CANDIDATE,
    /// MESSAGE-INTEGRITY with the peer's password, FINGERPRINT.
    package static func bindingRequest(transactionId: [UInt8], username: [UInt8], password: [UInt8], priority: UInt32, tieBreaker: UInt64, useCandidate: Bool) -> [UInt8] {
        var m: [UInt8] = [0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42] + transactionId.prefix(12)
        func attr(_ type: UInt16, _ value: [UInt8]) {
            m += [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
            while m.count % 4 != 0 { m.append(0) }
        }
        func setLength(_ extra: Int) {
            let l = m.count - 20 + extra
            m[2] = UInt8(l >> 8)
            m[3] = UInt8(l & 0xFF)
        }
        attr(0x0006, username)
        attr(0x0024, withUnsafeBytes(of: priority.bigEndian, Array.init))
        attr(0x802A, withUnsafeBytes(of: tieBreaker.bigEndian, Array.init))
        if useCandidate { attr(0x0025, []) }
        setLength(24)
        var mac = [UInt8](repeating: 0, count: 20)
        rsfu_hmac_sha1(password, password.count, m, m.count, &mac)
        attr(0x0008, mac)
        setLength(8)
        let crc = m.withUnsafeBytes { Crc32.checksum($0.baseAddress!, count: $0.count) } ^ 0x5354_554E
        attr(0x8028, withUnsafeBytes(of: crc.bigEndian, Array.init))
        return m
    }
}
