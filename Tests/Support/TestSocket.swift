import RingSFUCShims
import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers of the test targets.
///
/// A loopback UDP endpoint for tests: sends datagrams and receives them
/// with a timeout.
///
/// Receiving never blocks a thread: the control suites run on one global
/// actor (shared with the entities), and a thread blocked in `recv` there
/// would hold up every other test and the events they wait for, which made
/// timing assertions depend on what ran beside them.
public final class TestSocket: @unchecked Sendable {
    public let fd: Int32
    public let port: UInt16

    public init() {
        let bound = try! UdpSocket.bind(ip: "127.0.0.1", port: nil, range: 20000...29999)
        fd = bound.fd
        port = bound.local.port
        // Stays non-blocking: receives wait by suspending (see `waitTick`).
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8], to port: UInt16) {
        var addr = SocketAddress(ip: "127.0.0.1", port: port)!
        // The socket is non-blocking: a full send buffer is waited out
        // briefly (as a blocking send would), not taken for a lost packet.
        for _ in 0..<1000 {
            let sent = bytes.withUnsafeBytes { buf in
                withUnsafePointer(to: &addr.storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, buf.baseAddress, buf.count, 0, $0, addr.length)
                    }
                }
            }
            if sent >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { return }
            usleep(100)
        }
    }

    /// Whether `receive` returns RTCP too. Off by default: tests about
    /// media ignore the reports the SFU sends every second.
    public var acceptsRtcp = false

    /// Receives one datagram, or nil after the timeout.
    public func receive(timeoutMs: Int = 200) async -> [UInt8]? {
        let deadline = rsfu_monotonic_ns() + Int64(timeoutMs) * 1_000_000
        var buf = [UInt8](repeating: 0, count: 2048)
        while true {
            let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if n >= 0 {
                let isRtcp = n >= 2 && (128...191).contains(buf[0]) && (192...223).contains(buf[1])
                if !isRtcp || acceptsRtcp { return Array(buf[0..<n]) }
                continue
            }
            if rsfu_monotonic_ns() >= deadline { return nil }
            await waitTick()
        }
    }

    /// Receives until `count` datagrams arrived or the timeout passes.
    public func receiveAll(_ count: Int, timeoutMs: Int = 2000) async -> [[UInt8]] {
        var out: [[UInt8]] = []
        let deadline = rsfu_monotonic_ns() + Int64(timeoutMs) * 1_000_000
        // What is already queued counts even when this test got its turn
        // only after the deadline.
        while out.count < count {
            let left = Int((deadline - rsfu_monotonic_ns()) / 1_000_000)
            guard let d = await receive(timeoutMs: max(0, min(50, left))) else {
                if left <= 0 { break } else { continue }
            }
            out.append(d)
        }
        return out
    }
}

/// The pause between two polls of a test socket: short next to any
/// timing a test asserts, and it frees the caller's executor meanwhile.
func waitTick() async {
    try? await Task.sleep(nanoseconds: 300_000)
}

/// Builds an RTP packet for tests.
public func makeRtp(pt: UInt8 = 101, seq: UInt16, ts: UInt32 = 1000, ssrc: UInt32, marker: Bool = false,
             payload: [UInt8] = Array(repeating: 0xAB, count: 100), extensions: [(UInt8, [UInt8])] = []) -> [UInt8] {
    var p: [UInt8] = [extensions.isEmpty ? 0x80 : 0x90, (marker ? 0x80 : 0) | pt]
    p += [UInt8(seq >> 8), UInt8(seq & 0xFF)]
    p += withUnsafeBytes(of: ts.bigEndian, Array.init)
    p += withUnsafeBytes(of: ssrc.bigEndian, Array.init)
    if !extensions.isEmpty {
        var body: [UInt8] = []
        for (id, data) in extensions { body.append(id << 4 | UInt8(data.count - 1)); body += data }
        while body.count % 4 != 0 { body.append(0) }
        p += [0xBE, 0xDE, UInt8((body.count / 4) >> 8), UInt8((body.count / 4) & 0xFF)]
        p += body
    }
    return p + payload
}

/// A VP8 payload: descriptor with S=1 PID=0, then a key frame (P=0) or
/// delta frame header byte.
public func vp8Payload(keyFrame: Bool, start: Bool = true, size: Int = 100) -> [UInt8] {
    var p: [UInt8] = [start ? 0x10 : 0x00, keyFrame ? 0x00 : 0x01]
    p += Array(repeating: 0x55, count: max(0, size - 2))
    return p
}

/// A loopback TCP connection speaking RFC 4571 framing (each
/// packet behind a 2-byte big-endian length), as an ICE-TCP peer does.
public final class TestTcpConnection: @unchecked Sendable {
    public let fd: Int32
    public let localPort: UInt16
    private var pending: [UInt8] = []

    /// Connects to 127.0.0.1:`port`, from `sourceIp` (another loopback
    /// address stands for another machine) when given.
    public init?(port: UInt16, sourceIp: String? = nil) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let sourceIp {
            var source = SocketAddress(ip: sourceIp, port: 0)!
            let rc = withUnsafePointer(to: &source.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, source.length) }
            }
            guard rc == 0 else { close(s); return nil }
        }
        var addr = SocketAddress(ip: "127.0.0.1", port: port)!
        let rc = withUnsafePointer(to: &addr.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, addr.length) }
        }
        guard rc == 0 else { close(s); return nil }
        var local = SocketAddress()
        var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &local.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) }
        }
        fd = s
        local.length = len
        localPort = local.port
    }

    deinit { close(fd) }

    /// Sends raw bytes (a test can send broken framing this way).
    public func sendRaw(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    public func sendFrame(_ bytes: [UInt8]) {
        sendRaw([UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes)
    }

    /// The next whole frame, or nil after the timeout (or at end of stream).
    public func receiveFrame(timeoutMs: Int = 300) async -> [UInt8]? {
        let deadline = rsfu_monotonic_ns() + Int64(timeoutMs) * 1_000_000
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            if pending.count >= 2 {
                let length = Int(pending[0]) << 8 | Int(pending[1])
                if pending.count >= 2 + length {
                    let frame = Array(pending[2..<(2 + length)])
                    pending.removeFirst(2 + length)
                    return frame
                }
            }
            let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if n == 0 { return nil }
            if n > 0 { pending += buf[0..<n]; continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK, rsfu_monotonic_ns() < deadline else { return nil }
            await waitTick()
        }
    }

    /// True once the peer closed the connection (polls up to `timeoutMs`).
    public func peerClosed(timeoutMs: Int = 2000) async -> Bool {
        let deadline = rsfu_monotonic_ns() + Int64(timeoutMs) * 1_000_000
        var buf = [UInt8](repeating: 0, count: 8192)
        while rsfu_monotonic_ns() < deadline {
            let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return true }
            if n < 0 { await waitTick() }
        }
        return false
    }
}

/// A VP8 payload descriptor with the extension fields a browser sends: a
/// 15-bit picture id, TL0PICIDX and the temporal layer, then the VP8
/// payload header byte (key frame or not) and one payload byte.
public func vp8Descriptor(pictureId: UInt16, tl0: UInt8, tid: UInt8 = 0, key: Bool = false, start: Bool = true) -> [UInt8] {
    [0x80 | (start ? 0x10 : 0), 0xE0, 0x80 | UInt8(pictureId >> 8), UInt8(pictureId & 0xFF), tl0, tid << 6, key ? 0x00 : 0x01, 0xAA]
}

/// The picture id and TL0PICIDX of a descriptor built by `vp8Descriptor`.
public func vp8Numbers(_ d: [UInt8]) -> (pictureId: UInt16, tl0: UInt8) {
    (UInt16(d[2] & 0x7F) << 8 | UInt16(d[3]), d[4])
}
