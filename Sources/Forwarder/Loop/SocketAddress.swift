import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 UDP address stored inline (no allocation), comparable
/// byte-wise so the loop can match a datagram's source to a tuple.
package struct SocketAddress: Equatable, Sendable, CustomStringConvertible {
    package var storage: sockaddr_in6
    package var length: socklen_t

    package init() {
        storage = sockaddr_in6()
        length = 0
    }

    /// Parses a textual IPv4/IPv6 address. Returns nil if it is not one.
    package init?(ip: String, port: UInt16) {
        self.init()
        if ip.contains(":") {
            var a6 = sockaddr_in6()
            a6.sin6_family = sa_family_t(AF_INET6)
            a6.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, ip, &a6.sin6_addr) == 1 else { return nil }
            storage = a6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var a4 = sockaddr_in()
            a4.sin_family = sa_family_t(AF_INET)
            a4.sin_port = port.bigEndian
            guard inet_pton(AF_INET, ip, &a4.sin_addr) == 1 else { return nil }
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.storeBytes(of: a4, as: sockaddr_in.self)
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
    }

    /// Copies a kernel-provided address (e.g. from a received datagram).
    @inline(__always)
    package init(raw: UnsafeRawPointer, length: Int) {
        self.init()
        let n = min(length, MemoryLayout<sockaddr_in6>.size)
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.baseAddress!.copyMemory(from: raw, byteCount: n)
        }
        self.length = socklen_t(n)
    }

    package var isSet: Bool { length > 0 }

    /// FNV-1a of the host address alone (no port), never 0: one peer
    /// machine whatever port it connects from.
    package var hostKey: UInt32 {
        var h: UInt32 = 0x811C_9DC5
        withUnsafeBytes(of: storage) { raw in
            // IPv4: 4 bytes at offset 4; IPv6: 16 bytes at offset 8.
            let (offset, count) = family == AF_INET6 ? (8, 16) : (4, 4)
            for i in offset..<(offset + count) { h = (h ^ UInt32(raw[i])) &* 0x0100_0193 }
        }
        return h == 0 ? 1 : h
    }

    package var family: Int32 { Int32(storage.sin6_family) }

    package var port: UInt16 {
        // sin_port and sin6_port sit at the same offset.
        UInt16(bigEndian: storage.sin6_port)
    }

    package var ip: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var copy = storage
        if family == AF_INET {
            return withUnsafeBytes(of: &copy) { raw -> String in
                var a4 = raw.load(as: sockaddr_in.self)
                inet_ntop(AF_INET, &a4.sin_addr, &buf, socklen_t(buf.count))
                return Self.text(buf)
            }
        }
        inet_ntop(AF_INET6, &copy.sin6_addr, &buf, socklen_t(buf.count))
        return Self.text(buf)
    }

    private static func text(_ buf: [CChar]) -> String {
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    package var description: String { family == AF_INET6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    /// Byte-wise equality of family, port and address (the part that matters).
    @inline(__always)
    package func sameEndpoint(raw: UnsafeRawPointer, length: Int) -> Bool {
        guard length == Int(self.length) else { return false }
        return withUnsafeBytes(of: storage) { mine in
            memcmp(mine.baseAddress!, raw, length == MemoryLayout<sockaddr_in>.size ? 8 : 24) == 0
        }
    }

    package static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        guard a.length == b.length else { return false }
        return withUnsafeBytes(of: b.storage) { a.sameEndpoint(raw: $0.baseAddress!, length: Int(b.length)) }
    }
}

/// Creating and binding the UDP sockets that transports listen on. Done on
/// the control side (a syscall, not per packet); the forwarder owns the fd
/// from the moment it is handed over.
package enum UdpSocket {
    package struct Bound: Sendable {
        package var fd: Int32
        package var local: SocketAddress
    }

    package enum Failure: Error, Sendable, Equatable {
        case badAddress(String)
        case system(String, Int32)
        case noFreePort(UInt16, UInt16)
    }

    /// Binds a UDP socket to `ip`, on `port` or, when nil, on the first free
    /// port in `range`.
    package static func bind(ip: String, port: UInt16?, range: ClosedRange<UInt16>, receiveBuffer: Int32 = 4 << 20, sendBuffer: Int32 = 4 << 20) throws(Failure) -> Bound {
        try open(stream: false, ip: ip, port: port, range: range, receiveBuffer: receiveBuffer, sendBuffer: sendBuffer)
    }

    /// A listening TCP socket (ICE-TCP passive candidates), bound like a
    /// UDP one. Buffer sizes are left to the kernel's autotuning.
    package static func listenTcp(ip: String, port: UInt16?, range: ClosedRange<UInt16>) throws(Failure) -> Bound {
        try open(stream: true, ip: ip, port: port, range: range, receiveBuffer: 0, sendBuffer: 0)
    }

    private static func open(stream: Bool, ip: String, port: UInt16?, range: ClosedRange<UInt16>, receiveBuffer: Int32, sendBuffer: Int32) throws(Failure) -> Bound {
        guard let probe = SocketAddress(ip: ip, port: 0) else { throw .badAddress(ip) }
        var system = SystemRandomNumberGenerator()
        let candidates: [UInt16] = port.map { [$0] } ?? Self.shuffled(range, using: &system)
        let type = stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        for p in candidates {
            let fd = socket(probe.family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .system("socket", rsfu_errno()) }
            var rb = receiveBuffer, sb = sendBuffer
            if rb > 0 { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, socklen_t(MemoryLayout<Int32>.size)) }
            if sb > 0 { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, socklen_t(MemoryLayout<Int32>.size)) }
            if stream {
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            var addr = SocketAddress(ip: ip, port: p)!
            var rc = withUnsafePointer(to: &addr.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, addr.length) }
            }
            if rc == 0 && stream { rc = listen(fd, 256) }
            if rc == 0 {
                var local = SocketAddress()
                var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
                _ = withUnsafeMutablePointer(to: &local.storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
                }
                local.length = len
                return Bound(fd: fd, local: local)
            }
            let err = rsfu_errno()
            close(fd)
            if port != nil || err != EADDRINUSE { throw .system("bind \(ip):\(p)", err) }
        }
        throw .noFreePort(range.lowerBound, range.upperBound)
    }

    /// The ports of `range` in the order they are tried: from a random
    /// point on, so concurrent transports rarely collide.
    static func shuffled(_ range: ClosedRange<UInt16>, using random: inout some RandomNumberGenerator) -> [UInt16] {
        let all = Array(range)
        guard !all.isEmpty else { return [] }
        let start = Int.random(in: 0..<all.count, using: &random)
        return Array(all[start...] + all[..<start])
    }
}
