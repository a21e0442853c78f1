import RingSFUCShims
import Synchronization
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The comparison point: a plain single-thread recvmmsg/sendmmsg forwarder
/// doing the same fan-out (copy, SSRC and sequence rewrite per consumer),
/// one sendmmsg entry per output packet.
final class BaselineForwarder: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    let destinations: [UInt16]
    let cpu: Int?
    let stopFlag = Atomic<Bool>(false)
    let forwarded = Atomic<UInt64>(0)
    let threadId = Atomic<UInt>(0)
    private let done = DispatchSemaphore(value: 0)
    private let ready = DispatchSemaphore(value: 0)

    init(consumers: Int, sinkPort: UInt16, cpu: Int?) {
        (fd, port) = bindLoopbackUdp(bufferBytes: 8 << 20)
        destinations = Array(repeating: sinkPort, count: consumers)
        self.cpu = cpu
    }

    deinit { close(fd) }

    func start() {
        Thread { [self] in run(); done.signal() }.start()
        ready.wait()
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
    }

    private func run() {
        if let cpu { _ = rsfu_pin_current_thread(Int32(cpu)) }
        threadId.store(UInt(pthread_self()), ordering: .relaxed)
        ready.signal()
        let batch = 32, size = 2048, n = destinations.count
        let outCap = 1024
        let inMem = UnsafeMutableRawPointer.allocate(byteCount: batch * size, alignment: 4096)
        let outMem = UnsafeMutableRawPointer.allocate(byteCount: outCap * size, alignment: 4096)
        let inIov = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let inMsg = UnsafeMutablePointer<rsfu_mmsghdr>.allocate(capacity: batch)
        let outIov = UnsafeMutablePointer<iovec>.allocate(capacity: outCap)
        let outMsg = UnsafeMutablePointer<rsfu_mmsghdr>.allocate(capacity: outCap)
        let dests = UnsafeMutablePointer<sockaddr_in>.allocate(capacity: n)
        defer { inMem.deallocate(); outMem.deallocate(); inIov.deallocate(); inMsg.deallocate(); outIov.deallocate(); outMsg.deallocate(); dests.deallocate() }
        for i in 0..<n {
            dests[i] = sockaddr_in()
            dests[i].sin_family = sa_family_t(AF_INET)
            dests[i].sin_port = destinations[i].bigEndian
            inet_pton(AF_INET, "127.0.0.1", &dests[i].sin_addr)
        }
        for i in 0..<batch {
            inIov[i] = iovec(iov_base: inMem + i * size, iov_len: size)
            inMsg[i] = rsfu_mmsghdr()
            inMsg[i].msg_hdr.msg_iov = inIov + i
            inMsg[i].msg_hdr.msg_iovlen = 1
        }
        var seqs = [UInt16](repeating: 0, count: n)
        var total: UInt64 = 0
        while !stopFlag.load(ordering: .relaxed) {
            let got = Int(rsfu_recvmmsg(fd, inMsg, UInt32(batch), rsfu_msg_waitforone()))
            guard got > 0 else { continue }
            var out = 0
            func flush() {
                var sent = 0
                while sent < out {
                    let r = Int(rsfu_sendmmsg(fd, outMsg + sent, UInt32(out - sent), 0))
                    if r <= 0 { break }
                    sent += r
                }
                total += UInt64(sent)
                out = 0
            }
            for i in 0..<got {
                let len = Int(inMsg[i].msg_len)
                guard len >= 12 else { continue }
                let src = inMem + i * size
                for c in 0..<n {
                    if out == outCap { flush() }
                    let dst = outMem + out * size
                    dst.copyMemory(from: src, byteCount: len)
                    dst.storeBytes(of: UInt32(1000 + c).bigEndian, toByteOffset: 8, as: UInt32.self)
                    dst.storeBytes(of: seqs[c].bigEndian, toByteOffset: 2, as: UInt16.self)
                    seqs[c] &+= 1
                    outIov[out] = iovec(iov_base: dst, iov_len: len)
                    outMsg[out] = rsfu_mmsghdr()
                    outMsg[out].msg_hdr.msg_iov = outIov + out
                    outMsg[out].msg_hdr.msg_iovlen = 1
                    outMsg[out].msg_hdr.msg_name = UnsafeMutableRawPointer(dests + c)
                    outMsg[out].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
                    out += 1
                }
            }
            flush()
            forwarded.store(total, ordering: .relaxed)
        }
    }
}
