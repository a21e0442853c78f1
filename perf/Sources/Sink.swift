import RingSFUCShims
import RingSFUForwarder
import RingSFUPerfKit
import Histogram
import Synchronization
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One UDP socket that every consumer sends to. Counts packets per SSRC and
/// records forwarding latency from the timestamp the generator embedded.
final class Sink: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    let cpu: Int?
    let stopFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let lock = Mutex<State>(State())

    /// SRTP runs: one inbound session per sending port (each consumer
    /// transport has its own key). Set before `start`.
    var srtpByPort: [UInt16: SrtpKey] = [:]
    /// Simulated downstream loss: this fraction of the received video
    /// packets is reported lost with a NACK to the consumer's transport, so
    /// the SFU retransmits it. Set before `start`.
    var nackFraction = 0.0
    /// The consumers' RTX payload type, to count repairs apart.
    var rtxPayloadType: UInt8?
    /// The consumers' transport-wide sequence number extension id: the sink
    /// records arrivals per sending transport and answers with transport-cc
    /// feedback every 50 ms, as a browser does (over SRTP only to the ports
    /// it has an SRTCP key for in `srtcpByPort`). Set before `start`.
    var transportCcId: UInt8?
    /// SRTP runs: the key to protect feedback with, per sending port (our
    /// side's key of that transport's DTLS handshake). Set before `start`.
    var srtcpByPort: [UInt16: SrtpKey] = [:]
    /// Follow decodable frames per (sending port, SSRC) and count freezes
    /// (`FreezeTracker`). Set before `start`.
    var trackFreezes = false
    /// The payload type of the video the freeze tracker follows (the
    /// consumers' VP8).
    var videoPayloadType: UInt8 = 96
    private(set) var feedbackSent = 0
    private(set) var nacksSent = 0

    struct State {
        var received: UInt64 = 0
        var repairs: UInt64 = 0
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        /// Since the last `takeInterval` (latency over time).
        var interval = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var recording = false
        /// The tracker's figures, published every 100 ms by the receive loop.
        var freezes: (count: Int, frozenMs: Double, decoding: Int) = (0, 0, 0)
        var resetFreezes = false
    }

    init(cpu: Int?) {
        (fd, port) = bindLoopbackUdp(bufferBytes: 64 << 20)
        self.cpu = cpu
    }

    deinit { close(fd) }

    func start() {
        let t = Thread { [self] in run(); done.signal() }
        t.start()
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
    }

    /// Starts a measurement window: counters and histogram from zero.
    func beginWindow() {
        lock.withLock { s in
            s.received = 0
            s.histogram.reset()
            s.resetFreezes = true
            s.recording = true
        }
    }

    /// Packets received so far in the window (it keeps running).
    func peekWindow() -> (UInt64, Histogram<UInt64>) {
        lock.withLock { s in (s.received - s.repairs, s.histogram) }
    }

    /// Latencies since the previous call (and starts the next interval).
    func takeInterval() -> Histogram<UInt64> {
        lock.withLock { s in
            defer { s.interval.reset() }
            return s.interval
        }
    }

    /// Freezes in the window so far (count, frozen ms).
    func freezes() -> (count: Int, frozenMs: Double, decoding: Int) { lock.withLock { $0.freezes } }

    func endWindow() -> (UInt64, Histogram<UInt64>) {
        lock.withLock { s in
            s.recording = false
            return (s.received - s.repairs, s.histogram)
        }
    }

    /// NACKs a random `nackFraction` of the batch's video packets (one NACK
    /// per packet, to the transport it came from).
    private func nackSome(_ msgs: UnsafeMutablePointer<rsfu_mmsghdr>, mem: UnsafeMutableRawPointer, size: Int, count: Int,
                          names: UnsafeMutablePointer<sockaddr_in>, feedback: UnsafeMutableRawPointer, rng: inout SystemRandomNumberGenerator) {
        for i in 0..<count where msgs[i].msg_len >= 12 {
            let p = mem + i * size
            let pt = p.load(fromByteOffset: 1, as: UInt8.self) & 0x7F
            guard pt != 111, pt < 64 || pt > 95, Double.random(in: 0..<1, using: &rng) < nackFraction else { continue }
            let seq = readUInt16(p, 2), ssrc = readUInt32(p, 8)
            guard (seq != 0 || ssrc != 0) else { continue }
            let n = RtcpWriter.nack(feedback, capacity: 64, sender: 7, media: ssrc, count: 1) { _ in seq }
            _ = withUnsafePointer(to: &names[i]) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, feedback, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            nacksSent += 1
        }
    }

    /// RTX packets in the batch, told apart by the consumers' RTX payload type.
    private func repairs(_ msgs: UnsafeMutablePointer<rsfu_mmsghdr>, mem: UnsafeMutableRawPointer, size: Int, count: Int) -> Int {
        guard let rtxPt = rtxPayloadType else { return 0 }
        var r = 0
        for i in 0..<count where msgs[i].msg_len >= 12 && (mem + i * size).load(fromByteOffset: 1, as: UInt8.self) & 0x7F == rtxPt { r += 1 }
        return r
    }

    private func run() {
        if let cpu { _ = rsfu_pin_current_thread(Int32(cpu)) }
        let batch = 64, size = 2048
        let mem = UnsafeMutableRawPointer.allocate(byteCount: batch * size, alignment: 4096)
        let iovs = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let names = UnsafeMutablePointer<sockaddr_in>.allocate(capacity: batch)
        defer { names.deallocate() }
        var sessions: [UInt16: srtp_t] = [:]
        for (port, key) in srtpByPort { if let s = SrtpRaw.create(key, outbound: false) { sessions[port] = s } }
        defer { for s in sessions.values { srtp_dealloc(s) } }
        var rtcpSessions: [UInt16: srtp_t] = [:]
        for (port, key) in srtcpByPort { if let s = SrtpRaw.create(key, outbound: true) { rtcpSessions[port] = s } }
        defer { for s in rtcpSessions.values { srtp_dealloc(s) } }
        let msgs = UnsafeMutablePointer<rsfu_mmsghdr>.allocate(capacity: batch)
        defer { mem.deallocate(); iovs.deallocate(); msgs.deallocate() }
        for i in 0..<batch {
            iovs[i] = iovec(iov_base: mem + i * size, iov_len: size)
            msgs[i] = rsfu_mmsghdr()
            msgs[i].msg_hdr.msg_iov = iovs + i
            msgs[i].msg_hdr.msg_iovlen = 1
            msgs[i].msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
        }
        var latencies = [UInt64](repeating: 0, count: batch)
        let feedback = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { feedback.deallocate() }
        var rng = SystemRandomNumberGenerator()
        var cc = FeedbackState()
        defer { cc.release() }
        var tracker = FreezeTracker()
        var lastFreezeFigures: Int64 = 0
        while !stopFlag.load(ordering: .relaxed) {
            // Freeze figures every 100 ms, also while nothing arrives (a
            // total freeze is one too).
            if trackFreezes, case let t = rsfu_monotonic_ns(), t - lastFreezeFigures > 100_000_000 {
                lastFreezeFigures = t
                lock.withLock { s in
                    if s.resetFreezes { tracker.resetCounts(); s.resetFreezes = false }
                    s.freezes = tracker.figures(nowNs: t)
                }
            }
            for i in 0..<batch { msgs[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size) }
            let n = Int(rsfu_recvmmsg(fd, msgs, UInt32(batch), rsfu_msg_waitforone()))
            guard n > 0 else { continue }
            if !sessions.isEmpty {
                for i in 0..<n {
                    guard let s = sessions[UInt16(bigEndian: names[i].sin_port)] else { continue }
                    var len = Int32(msgs[i].msg_len)
                    if srtp_unprotect(s, mem + i * size, &len) == srtp_err_status_ok { msgs[i].msg_len = UInt32(len) } else { msgs[i].msg_len = 0 }
                }
            }
            if nackFraction > 0 { nackSome(msgs, mem: mem, size: size, count: n, names: names, feedback: feedback, rng: &rng) }
            let now = rsfu_monotonic_ns()
            if let id = transportCcId, sessions.isEmpty || !rtcpSessions.isEmpty {
                recordAndAnswer(&cc, id: id, msgs, mem: mem, size: size, count: n, names: names, protect: rtcpSessions, nowNs: now)
            }
            var count = 0
            for i in 0..<n where msgs[i].msg_len >= UInt32(LoadGenerator.timestampOffset + 10) {
                // The send time sits after the VP8 descriptor, behind any header extension.
                let at = LoadGenerator.payloadOffset(mem + i * size) + 2
                guard Int(msgs[i].msg_len) >= at + 8 else { continue }
                let sent = (mem + i * size).loadUnaligned(fromByteOffset: at, as: Int64.self)
                latencies[count] = UInt64(max(0, (now - sent) / 1000))
                count += 1
            }
            if trackFreezes { follow(&tracker, msgs, mem: mem, size: size, count: n, names: names, nowNs: now) }
            lock.withLock { s in
                guard s.recording else { return }

                // RTX repairs are counted apart from first transmissions.
                s.repairs += UInt64(repairs(msgs, mem: mem, size: size, count: n))
                // RTCP (the consumers' sender reports: second byte 192-223,
                // RFC 5761) is not a forwarded packet.
                var rtcp = 0
                for i in 0..<n where msgs[i].msg_len >= 2 {
                    let b1 = (mem + i * size).load(fromByteOffset: 1, as: UInt8.self)
                    if b1 >= 192 && b1 <= 223 { rtcp += 1 }
                }
                s.received += UInt64(n - rtcp)
                for i in 0..<count {
                    _ = s.histogram.record(latencies[i])
                    _ = s.interval.record(latencies[i])
                }
            }
        }
    }

    /// Video packets (VP8, payload type 96) into the freeze tracker.
    private func follow(_ tracker: inout FreezeTracker, _ msgs: UnsafeMutablePointer<rsfu_mmsghdr>, mem: UnsafeMutableRawPointer, size: Int,
                        count: Int, names: UnsafeMutablePointer<sockaddr_in>, nowNs: Int64) {
        for i in 0..<count where msgs[i].msg_len >= UInt32(LoadGenerator.timestampOffset) {
            let p = UnsafeRawPointer(mem + i * size)
            let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
            guard b1 & 0x7F == videoPayloadType else { continue }
            let o = LoadGenerator.payloadOffset(p)
            guard Int(msgs[i].msg_len) >= o + 2 else { continue }
            let keyStart = p.load(fromByteOffset: o, as: UInt8.self) & 0x10 != 0 && p.load(fromByteOffset: o + 1, as: UInt8.self) & 0x01 == 0
            let key = UInt64(UInt16(bigEndian: names[i].sin_port)) << 32 | UInt64(readUInt32(p, 8))
            tracker.packet(key, seq: readUInt16(p, 2), marker: b1 & 0x80 != 0, keyStart: keyStart, nowNs: nowNs)
        }
    }

    /// Per sending port: its arrival recorder (ring memory of its own) and address.
    struct FeedbackState {
        var recorders: [UInt16: (TransportCcRecorder, UnsafeMutablePointer<UInt64>, sockaddr_in)] = [:]
        var lastFeedbackNs: Int64 = 0
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1500, alignment: 8)

        func release() {
            for (_, r) in recorders { r.1.deallocate() }
            buffer.deallocate()
        }
    }

    private func recordAndAnswer(_ cc: inout FeedbackState, id: UInt8, _ msgs: UnsafeMutablePointer<rsfu_mmsghdr>, mem: UnsafeMutableRawPointer, size: Int,
                                 count: Int, names: UnsafeMutablePointer<sockaddr_in>, protect: [UInt16: srtp_t], nowNs: Int64) {
        for i in 0..<count where msgs[i].msg_len >= 12 {
            let p = mem + i * size
            guard let header = try? RtpHeader.parse(p, count: Int(msgs[i].msg_len)) else { continue }
            var sequence: UInt16? = nil
            try? RtpHeaderExtensions.forEach(p, header) { extId, offset, length in
                if extId == id, length >= 2 { sequence = readUInt16(p, offset) }
            }
            guard let sequence else { continue }
            let port = UInt16(bigEndian: names[i].sin_port)
            guard protect.isEmpty || protect[port] != nil else { continue }
            if cc.recorders[port] == nil {
                let ring = UnsafeMutablePointer<UInt64>.allocate(capacity: TransportCcRecorder.capacity)
                cc.recorders[port] = (TransportCcRecorder(ring: ring), ring, names[i])
            }
            cc.recorders[port]!.0.record(sequence: sequence, arrivalNs: nowNs)
        }
        guard nowNs - cc.lastFeedbackNs >= 50_000_000 else { return }
        cc.lastFeedbackNs = nowNs
        for port in cc.recorders.keys {
            var address = cc.recorders[port]!.2
            while true {
                var n = cc.recorders[port]!.0.writeFeedback(cc.buffer, capacity: 1200, senderSsrc: 7)
                guard n > 0 else { break }
                if let session = protect[port] {
                    var length = Int32(n)
                    guard srtp_protect_rtcp(session, cc.buffer, &length) == srtp_err_status_ok else { continue }
                    n = Int(length)
                }
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, cc.buffer, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                feedbackSent += 1
            }
        }
    }
}
