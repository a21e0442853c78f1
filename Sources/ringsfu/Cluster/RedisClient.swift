import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// One connection to Redis, used by the cluster for a command a second
/// and one per cascade set-up. Commands run one at a time on their own
/// queue over a blocking socket with timeouts (connect 1 s, each reply
/// 2 s), so a Redis that is down or stalls costs the caller at most that
/// and never blocks the entities' actor or an event loop. A failed
/// connection is dropped and made again by the next command.
final class RedisClient: @unchecked Sendable {
    let host: String
    let port: Int
    private let queue = DispatchQueue(label: "ringsfu.redis")
    /// Touched on `queue` only.
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends a command, returns its reply (a Redis error reply is thrown).
    func command(_ args: String...) async throws(RespError) -> RespValue { try await command(args) }

    func command(_ args: [String]) async throws(RespError) -> RespValue {
        let result: Result<RespValue, RespError> = await withCheckedContinuation { c in
            queue.async { c.resume(returning: Result { () throws(RespError) in try self.roundTrip(args) }) }
        }
        let reply = try result.get()
        if case .error(let message) = reply { throw RespError(description: message) }
        return reply
    }

    private func roundTrip(_ args: [String]) throws(RespError) -> RespValue {
        do {
            if fd < 0 { try open() }
            try write(Resp.encode(args))
            return try readReply()
        } catch {
            if fd >= 0 { close(fd) }
            fd = -1
            buffer.removeAll()
            throw error
        }
    }

    private func open() throws(RespError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw RespError(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let s = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard s >= 0 else { throw RespError(description: "socket: errno \(errno)") }
        // Non-blocking connect bounded by poll, then blocking I/O with timeouts.
        if connect(s, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { close(s); throw RespError(description: "connect to \(host):\(port): errno \(errno)") }
            var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            guard poll(&p, 1, 1000) == 1, getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0, err == 0 else {
                close(s)
                throw RespError(description: "connect to \(host):\(port): \(err == 0 ? "timed out" : "errno \(err)")")
            }
        }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        fd = s
    }

    private func write(_ bytes: [UInt8]) throws(RespError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RespError(description: "send to Redis: errno \(errno)") }
            sent += n
        }
    }

    private func readReply() throws(RespError) -> RespValue {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            if let (value, used) = try Resp.parse(buffer[...]) {
                buffer.removeFirst(used)
                return value
            }
            guard buffer.count <= Resp.maxBulkBytes + 64 * 1024 else { throw RespError(description: "reply too large") }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw RespError(description: n == 0 ? "Redis closed the connection" : "no reply from Redis within 2 s (errno \(errno))") }
            buffer += chunk[0..<n]
        }
    }
}
