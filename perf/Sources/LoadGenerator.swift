import RingSFUCShims
import RingSFUForwarder
import Synchronization
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Traffic shapes the generator can send.
enum TrafficMode: String, CaseIterable {
    /// Identical 1200-byte VP8-like packets.
    case synthetic
    /// Video streams of 30 fps frames sent as bursts of near-equal packets
    /// (shorter last), each with a 50 pps Opus stream of 100-200 bytes.
    case realistic
}

/// Paced RTP sender on its own thread and io_uring. Every packet carries
/// its send time (monotonic ns) at a fixed payload offset for the sink.
final class LoadGenerator: @unchecked Sendable {
    static let timestampOffset = 14 // 12-byte RTP header + 2-byte VP8 descriptor

    /// Where an RTP packet's payload starts (after CSRCs and extensions).
    static func payloadOffset(_ p: UnsafeRawPointer) -> Int {
        let b0 = p.load(as: UInt8.self)
        var o = 12 + 4 * Int(b0 & 0x0F)
        if b0 & 0x10 != 0 { o += 4 + 4 * Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o + 2, as: UInt16.self))) }
        return o
    }

    /// Header extension id of the transport-wide sequence number, written
    /// into every packet when set (one counter across all streams).
    var transportCcId: UInt8? = nil
    let destination: (String, UInt16)
    let videoSsrcs: [UInt32]
    let audioSsrcs: [UInt32]
    let videoPps: Double
    let mode: TrafficMode
    let cpu: Int?
    /// Local port to send from (nil: any). A comedia transport only accepts
    /// the source it learnt first, so runs against one transport reuse it.
    let sourcePort: UInt16?
    /// An already bound socket to send from (the one the publisher's ICE
    /// check and DTLS handshake used), taken over and closed at the end:
    /// closing and binding its port again races with other sockets for it.
    /// Set before `start`.
    var sourceFd: Int32? = nil
    let stopFlag = Atomic<Bool>(false)
    let sentVideo = Atomic<UInt64>(0)
    let sentAudio = Atomic<UInt64>(0)
    /// Packets of the last video stream (realistic mode): a simulcast
    /// publisher's top layer, what its subscribers receive.
    let sentLastVideo = Atomic<UInt64>(0)
    /// Realistic mode: each video stream's frame sizes times this (a
    /// simulcast publisher's layers). Set before `start`.
    var videoScales: [Double] = []
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    /// Protects every packet with this key before sending (SRTP runs).
    let srtpKey: SrtpKey?
    /// Realistic mode: answer the server's key frame requests (PLI, FIR)
    /// with a key frame on the next frame, and its NACKs with RTX (when
    /// `rtxSsrcs` are given, one per video stream, payload type 97), as a
    /// browser does; with SRTP, `feedbackKey` is the key of the server's
    /// direction. Set before `start`.
    var answersFeedback = false
    var feedbackKey: SrtpKey? = nil
    var rtxSsrcs: [UInt32] = []
    static let rtxPayloadType: UInt8 = 97
    /// Packets resent on NACKs.
    let retransmitted = Atomic<Int>(0)
    /// Realistic mode: this fraction of the video packets is lost on the
    /// way to the server (not sent; still kept for NACKs). Set before `start`.
    var lossFraction = 0.0
    /// Key frame requests received.
    let keyFrameRequestsReceived = Atomic<Int>(0)

    init(destination: (String, UInt16), videoSsrcs: [UInt32], audioSsrcs: [UInt32], videoPps: Double, mode: TrafficMode, cpu: Int?, sourcePort: UInt16? = nil, srtpKey: SrtpKey? = nil) {
        self.srtpKey = srtpKey
        self.sourcePort = sourcePort
        self.destination = destination
        self.videoSsrcs = videoSsrcs
        self.audioSsrcs = audioSsrcs
        self.videoPps = videoPps
        self.mode = mode
        self.cpu = cpu
    }

    func start() {
        let t = Thread { [self] in run(); done.signal() }
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
    }

    private func run() {
        if let cpu { _ = rsfu_pin_current_thread(Int32(cpu)) }
        let fd = sourceFd ?? socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var sb: Int32 = 8 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, 4)
        if let sourcePort, sourceFd == nil {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_port = sourcePort.bigEndian
            inet_pton(AF_INET, "127.0.0.1", &local.sin_addr)
            _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = destination.1.bigEndian
        inet_pton(AF_INET, destination.0, &addr.sin_addr)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        defer { close(fd) }

        let srtp: srtp_t? = srtpKey.flatMap { SrtpRaw.create($0, outbound: true) }
        defer { if let srtp { srtp_dealloc(srtp) } }
        var ring = io_uring()
        guard io_uring_queue_init(1024, &ring, 0) == 0 else { return }
        defer { io_uring_queue_exit(&ring) }
        // A ring of packet buffers, reused round-robin once their send completed.
        let slots = 512, slotSize = 1500
        let mem = UnsafeMutableRawPointer.allocate(byteCount: slots * slotSize, alignment: 4096)
        defer { mem.deallocate() }
        var inflight = 0, nextSlot = 0
        var videoSeq: UInt16 = 0
        var videoTs: UInt32 = 0
        let start = rsfu_monotonic_ns()
        var videoSent: UInt64 = 0, audioSent: UInt64 = 0
        var rng = SystemRandomNumberGenerator()
        var wideSeq: UInt16 = 0
        // The last 512 packets of each video stream, unprotected, for NACKs.
        let history = rtxSsrcs.isEmpty ? nil : PacketHistory(streams: videoSsrcs.count)

        func reap(_ ring: inout io_uring, wait: Bool) {
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            if wait && inflight > 0 { _ = io_uring_wait_cqe(&ring, &cqe) }
            while io_uring_peek_cqe(&ring, &cqe) == 0, let c = cqe {
                io_uring_cqe_seen(&ring, c)
                inflight -= 1
            }
        }

        func queue(_ ring: inout io_uring, ssrc: UInt32, pt: UInt8, seq: UInt16, ts: UInt32, marker: Bool, size: Int, key: Bool) {
            while inflight >= slots - 1 { _ = io_uring_submit(&ring); reap(&ring, wait: true) }
            let p = mem + nextSlot * slotSize
            nextSlot = (nextSlot + 1) % slots
            p.storeBytes(of: transportCcId == nil ? 0x80 : 0x90, toByteOffset: 0, as: UInt8.self)
            p.storeBytes(of: (marker ? 0x80 : 0) | pt, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: seq.bigEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: ts.bigEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: ssrc.bigEndian, toByteOffset: 8, as: UInt32.self)
            var o = 12
            var size = size
            if let id = transportCcId {
                // One-byte header block with the 2-byte transport-wide sequence number.
                p.storeBytes(of: UInt32(0xBEDE_0001).bigEndian, toByteOffset: 12, as: UInt32.self)
                p.storeBytes(of: id << 4 | 1, toByteOffset: 16, as: UInt8.self)
                p.storeBytes(of: wideSeq.bigEndian, toByteOffset: 17, as: UInt16.self)
                p.storeBytes(of: 0, toByteOffset: 19, as: UInt8.self)
                wideSeq &+= 1
                o = 20
                size += 8
            }
            // VP8 descriptor: S=1 PID=0, then the P bit (0 = key frame).
            p.storeBytes(of: 0x10, toByteOffset: o, as: UInt8.self)
            p.storeBytes(of: key ? 0x00 : 0x01, toByteOffset: o + 1, as: UInt8.self)
            p.storeBytes(of: rsfu_monotonic_ns(), toByteOffset: o + 2, as: Int64.self)
            if let history, let v = videoSsrcs.firstIndex(of: ssrc) { history.keep(stream: v, sequence: seq, p, length: size) }
            if lossFraction > 0, pt == 96, Double.random(in: 0..<1, using: &rng) < lossFraction { return }
            var length = size
            if let srtp {
                var len = Int32(size)
                if srtp_protect(srtp, p, &len) == srtp_err_status_ok { length = Int(len) }
            }
            let sqe = io_uring_get_sqe(&ring)!
            io_uring_prep_send(sqe, fd, p, length, 0)
            inflight += 1
        }

        if mode == .synthetic {
            while !stopFlag.load(ordering: .relaxed) {
                let elapsed = Double(rsfu_monotonic_ns() - start) / 1e9
                let videoDue = UInt64(elapsed * videoPps)
                var queued = 0
                while videoSent < videoDue && queued < 256 {
                    videoTs &+= 3000
                    queue(&ring, ssrc: videoSsrcs[0], pt: 96, seq: videoSeq, ts: videoTs, marker: true, size: 1200, key: videoSent % 300 == 0)
                    videoSeq &+= 1
                    videoSent += 1
                    queued += 1
                }
                if inflight > 0 { _ = io_uring_submit(&ring) }
                reap(&ring, wait: false)
                sentVideo.store(videoSent, ordering: .relaxed)
                if queued < 256 { usleep(100) }
            }
        } else {
            // Each video stream sends 30 frames/s as back-to-back bursts of
            // near-equal packets with a shorter last one (key frames every
            // 2 s are larger); each audio stream sends 50 packets/s of
            // 100-200 bytes. Streams start at staggered phases.
            let streams = videoSsrcs.count
            var nextFrame = (0..<streams).map { start + Int64($0) * 33_333_333 / Int64(max(1, streams)) }
            var nextAudio = (0..<audioSsrcs.count).map { start + Int64($0) * 20_000_000 / Int64(max(1, audioSsrcs.count)) }
            var frameNo = [Int](repeating: 0, count: streams)
            var lastSent: UInt64 = 0
            var seqs = [UInt16](repeating: 0, count: streams)
            var tss = [UInt32](repeating: 0, count: streams)
            var aseqs = [UInt16](repeating: 0, count: audioSsrcs.count)
            var atss = [UInt32](repeating: 0, count: audioSsrcs.count)
            let feedback = answersFeedback ? PublisherFeedback(receiveKey: feedbackKey) : nil
            var forceKey = [Bool](repeating: false, count: streams)
            var rtxSeqs = [UInt16](repeating: 0, count: streams)
            while !stopFlag.load(ordering: .relaxed) {
                if let feedback {
                    feedback.poll(fd) { request in
                        switch request {
                        case .keyFrame(let ssrc):
                            if let v = videoSsrcs.firstIndex(of: ssrc) { forceKey[v] = true }
                        case .nack(let ssrc, let sequence):
                            guard let history, let v = videoSsrcs.firstIndex(of: ssrc),
                                  history.sendRtx(stream: v, sequence: sequence, rtxSsrc: rtxSsrcs[v], rtxSequence: &rtxSeqs[v], srtp: srtp, fd: fd) else { return }
                            retransmitted.add(1, ordering: .relaxed)
                        }
                    }
                    keyFrameRequestsReceived.store(feedback.received, ordering: .relaxed)
                }
                let now = rsfu_monotonic_ns()
                for v in 0..<streams where nextFrame[v] <= now {
                    nextFrame[v] += 33_333_333
                    // A requested key frame starts the 2 s cadence over.
                    if forceKey[v] { frameNo[v] = 0; forceKey[v] = false }
                    frameNo[v] += 1
                    let key = frameNo[v] % 60 == 1
                    let full = key ? 30_000 : Int.random(in: 4_000...14_000, using: &rng)
                    let bytes = v < videoScales.count ? max(200, Int(Double(full) * videoScales[v])) : full
                    let packets = (bytes + 1199) / 1200
                    let each = (bytes + packets - 1) / packets
                    let last = bytes - each * (packets - 1)
                    tss[v] &+= 3000
                    for k in 0..<packets {
                        let size = 12 + (k == packets - 1 ? max(20, last) : each)
                        queue(&ring, ssrc: videoSsrcs[v], pt: 96, seq: seqs[v], ts: tss[v], marker: k == packets - 1, size: size, key: key && k == 0)
                        seqs[v] &+= 1
                        videoSent += 1
                        if v == streams - 1 { lastSent += 1 }
                    }
                }
                for a in 0..<audioSsrcs.count where nextAudio[a] <= now {
                    nextAudio[a] += 20_000_000
                    atss[a] &+= 960
                    queue(&ring, ssrc: audioSsrcs[a], pt: 111, seq: aseqs[a], ts: atss[a], marker: false, size: Int.random(in: 100...200, using: &rng), key: false)
                    aseqs[a] &+= 1
                    audioSent += 1
                }
                if inflight > 0 { _ = io_uring_submit(&ring) }
                reap(&ring, wait: false)
                sentVideo.store(videoSent, ordering: .relaxed)
                sentAudio.store(audioSent, ordering: .relaxed)
                sentLastVideo.store(lastSent, ordering: .relaxed)
                usleep(200)
            }
        }
        _ = io_uring_submit(&ring)
        while inflight > 0 { reap(&ring, wait: true) }
    }
}
