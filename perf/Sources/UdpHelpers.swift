import Foundation
import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// A UDP socket bound to 127.0.0.1 on a free port (or `port`), with large
/// buffers and a 100 ms receive timeout (so threads notice their stop flag).
func bindLoopbackUdp(bufferBytes: Int32, port: UInt16 = 0) -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var size = bufferBytes
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
    var tv = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return (fd, UInt16(bigEndian: addr.sin_port))
}
