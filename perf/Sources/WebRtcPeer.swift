import Foundation
import RingSFU
import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// What a browser does before media flows on a WebRtcTransport, over one UDP
/// socket: a connectivity check that nominates the pair (the server is
/// ICE-lite), then a DTLS client handshake; the SRTP keys come out of it.
/// The socket must have a receive timeout (see `bindLoopbackUdp`).
struct WebRtcPeer {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let context: DtlsContext

    init() throws { context = try DtlsContext() }

    /// What the transport's `connect` needs: we take the DTLS client role.
    var dtlsParameters: DtlsParameters {
        DtlsParameters(role: "client", fingerprints: [DtlsFingerprint(algorithm: "sha-256", value: context.fingerprint("sha-256")!)])
    }

    /// Sends from `fd` to 127.0.0.1:`port` until the check is answered and
    /// the handshake done; returns the keys (send: ours, receive: the server's).
    func connect(fd: Int32, port: UInt16, ice: IceParameters) throws -> (send: SrtpKey, receive: SrtpKey) {
        var buf = [UInt8](repeating: 0, count: 4096)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        return try connect(ice: ice, description: "UDP port \(port)", send: { bytes in
            _ = bytes.withUnsafeBytes { raw in
                withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            }
        }, receive: {
            // What the transport sends (other transports may send to this
            // socket too).
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &length) } }
            return n > 0 && UInt16(bigEndian: from.sin_port) == port ? Array(buf[0..<n]) : nil
        })
    }

    /// The same over an ICE-TCP connection (`fd`, connected, with a receive
    /// timeout): every packet behind a 2-byte length (RFC 4571).
    func connect(tcp fd: Int32, ice: IceParameters) throws -> (send: SrtpKey, receive: SrtpKey) {
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        return try connect(ice: ice, description: "an ICE-TCP connection", send: { bytes in
            let framed = [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
            _ = framed.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }, receive: {
            while true {
                if pending.count >= 2 {
                    let length = Int(pending[0]) << 8 | Int(pending[1])
                    if pending.count >= 2 + length {
                        defer { pending.removeFirst(2 + length) }
                        return Array(pending[2..<(2 + length)])
                    }
                }
                let n = recv(fd, &buf, buf.count, 0)
                guard n > 0 else { return nil }
                pending += buf[0..<n]
            }
        })
    }

    private func connect(ice: IceParameters, description: String, send: ([UInt8]) -> Void, receive: () -> [UInt8]?) throws -> (send: SrtpKey, receive: SrtpKey) {
        var buf = [UInt8](repeating: 0, count: 4096)
        let check = StunWriter.bindingRequest(transactionId: (0..<12).map { _ in UInt8.random(in: 0...255) },
                                              username: Array("\(ice.usernameFragment):perf".utf8), password: Array(ice.password.utf8),
                                              priority: 100, tieBreaker: 1, useCandidate: true)
        var answered = false
        for _ in 0..<20 where !answered {
            send(check)
            // A binding success response (class bits of 0x0101).
            if let reply = receive(), reply.count >= 20, reply[0] == 0x01, reply[1] == 0x01 { answered = true }
        }
        guard answered else { throw Failure(description: "no answer to the ICE check on \(description)") }
        var dtls = try DtlsTransport(context: context, role: .client)
        dtls.start()
        let deadline = Date().addingTimeInterval(5)
        func flush() {
            while true {
                let n = buf.withUnsafeMutableBytes { dtls.takeOutput(into: $0.baseAddress!, capacity: $0.count) }
                if n == 0 { break }
                send(Array(buf[0..<n]))
            }
        }
        while dtls.state == .connecting && Date() < deadline {
            flush()
            if let record = receive() {
                // DTLS records only (RFC 7983: first byte 20-63).
                if let first = record.first, (20...63).contains(first) {
                    record.withUnsafeBytes { _ = dtls.receive($0.baseAddress!, count: $0.count) }
                }
            } else if dtls.timeoutMs == 0 {
                dtls.handleTimeout()
            }
        }
        flush()
        guard dtls.state == .connected, let keys = dtls.srtpKeys() else { throw Failure(description: "DTLS handshake over \(description) failed") }
        return (keys.send, keys.receive)
    }
}
