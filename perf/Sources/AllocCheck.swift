import ArgumentParser
import Foundation
import MallocInterposerSwift
import RingSFU
import RingSFUForwarder
import RingSFUCShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The forwarder thread being watched, and what it allocated. Globals so a
/// C-convention hook can reach them without capturing (or allocating).
let watchedThread = Atomic<UInt>(0)
let watchedAllocations = Atomic<Int>(0)
/// Return addresses of the first counted allocation (written once, by the
/// forwarder thread, inside the hook).
nonisolated(unsafe) let firstStack = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 32)
nonisolated(unsafe) var firstStackDepth = 0

/// Counts heap allocations made on the forwarder thread while it forwards
/// in steady state. Must run with the interposer preloaded:
/// `LD_PRELOAD=<build dir>/libMallocInterposerSwift.so ringsfu-perf alloc-check`.
struct AllocCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alloc-check",
        abstract: "Fail if the forwarder thread allocates while forwarding (needs the malloc interposer preloaded).")

    @Option(help: "Packets to forward (output) while counting (after warm-up).")
    var packets = 100_000

    @Option(help: "Consumers of the producer.")
    var consumers = 3

    @Flag(help: "SRTP (AES_CM_128_HMAC_SHA1_80) on both legs: unprotect and protect per packet.")
    var srtp = false

    @Option(help: "Percentage of video packets the sink reports lost, so the worker retransmits them as RTX.")
    var loss = 0.0

    @Flag(help: "Simulcast: three video streams per producer as its encodings, simulcast consumers forwarding the top one.")
    var simulcast = false

    @Flag(help: "WebRTC transports on both legs: an ICE check and a DTLS handshake each, then SRTP with the negotiated keys.")
    var webrtc = false

    @Flag(name: .customLong("ice-tcp"), help: "As --webrtc, with the consumers' transports over ICE-TCP (RFC 4571 framing on the send path).")
    var iceTcp = false

    func run() async throws {
        MallocInterposerSwift.initialize()
        let worker = try await Worker.create(WorkerSettings(logLevel: "warning", rtcMinPort: 20000, rtcMaxPort: 39999, maxTransports: 64, maxProducers: 128, maxConsumers: 1024))
        let sink = Sink(cpu: nil)
        let (video, audio) = Fanout.ssrcs(40, .realistic)
        let suite = SrtpCryptoSuite.aesCm128HmacSha1_80
        let sourcePort = UInt16.random(in: 40000...49999)
        var publisherKey = srtp ? SrtpKey(suite: suite, key: (0..<suite.keyLength).map { _ in UInt8.random(in: 0...255) }) : nil
        let (port, thread, sinkKeys, rtxPt): (UInt16, UInt, [UInt16: SrtpKey], UInt8?)
        let drain = TcpDrain()
        if webrtc || iceTcp {
            let room = try await Self.setUpWebRtcRoom(worker: worker, consumers: consumers, video: video, audio: audio, sinkFd: sink.fd, sourcePort: sourcePort,
                                                      tcpDrain: iceTcp ? drain : nil)
            (port, thread, sinkKeys, rtxPt) = (room.port, await worker.forwarderThread, room.sinkKeys, room.rtxPt)
            publisherKey = room.publisherKey
        } else {
            (port, thread, sinkKeys, rtxPt) = try await Fanout().setUpRoom(worker: worker, consumers: consumers, video: video, audio: audio, sinkPort: sink.port,
                                                                         listen: TransportListenInfo(protocol: "udp", ip: "127.0.0.1"), srtp: publisherKey, transportCc: true,
                                                                         simulcast: simulcast, consumerCc: true)
            // The sink answers with transport-wide feedback (plain RTP): the
            // send-side estimator, layer allocation and probes run too.
            if !srtp { sink.transportCcId = try await Fanout.consumerTransportCcId(worker) }
        }
        sink.srtpByPort = sinkKeys
        drain.start()
        sink.nackFraction = loss / 100
        sink.rtxPayloadType = rtxPt
        sink.start()
        // A simulcast consumer forwards one encoding of three.
        let expectedOut = UInt64(consumers)
        let share: UInt64 = simulcast ? 3 : 1

        // Warm up: every code path of the loop has run at least once.
        let warm = LoadGenerator(destination: ("127.0.0.1", port), videoSsrcs: video, audioSsrcs: audio, videoPps: 0, mode: .realistic, cpu: nil, sourcePort: sourcePort, srtpKey: publisherKey)
        // Transport-wide sequence numbers too: arrivals recorded, feedback sent.
        warm.transportCcId = Fanout.transportCcId
        warm.start()
        try await Task.sleep(for: .seconds(1))
        // ...including a whole round of RTCP reports (every 1-1.5 s), where
        // scores are first set: first uses of some code instantiate type
        // metadata, which allocates once. (Other RTCP, such as the
        // consumers' first key frame requests, goes out sooner.)
        for _ in 0..<50 where await { let c = await worker.forwarder.counters().0; return c.senderReports == 0 || c.receiverReports == 0 }() {
            try await Task.sleep(for: .milliseconds(100))
        }
        // ...and the start of send-side estimation: probing until the
        // estimate covers what the consumers send (first probe clusters and
        // allocations instantiate metadata too).
        var probes = await worker.getResourceUsage().probePackets
        for _ in 0..<(sink.transportCcId == nil ? 0 : 20) {
            try await Task.sleep(for: .milliseconds(500))
            let now = await worker.getResourceUsage().probePackets
            if now == probes && now > 0 { break }
            probes = now
        }
        // The same generator goes on into the measurement: a second one would
        // start its sequence numbers over, which SRTP rejects as replays.
        _ = await worker.getResourceUsage()

        watchedThread.store(thread, ordering: .relaxed)
        watchedAllocations.store(0, ordering: .relaxed)
        MallocInterposerSwift.setAllocationHook { _ in
            if UInt(pthread_self()) == watchedThread.load(ordering: .relaxed) {
                // The first allocation's stack, to name the culprit.
                if watchedAllocations.add(1, ordering: .relaxed).newValue == 1 {
                    firstStackDepth = Int(rsfu_capture_stack(firstStack, 32))
                }
            }
        }
        // Read the starting counters first: answering a command may allocate.
        let before = await worker.getResourceUsage()
        try await Task.sleep(for: .milliseconds(50))
        MallocInterposerSwift.hook()
        let gen = warm
        let sentBefore = gen.sentVideo.load(ordering: .relaxed)
        // Each input packet is forwarded to every consumer.
        while (gen.sentVideo.load(ordering: .relaxed) - sentBefore) * UInt64(consumers) / share < UInt64(packets) {
            try await Task.sleep(for: .milliseconds(20))
        }
        gen.stop()
        try await Task.sleep(for: .milliseconds(300))
        // Reading the counters is a command the forwarder answers; stop
        // counting before that reply allocates.
        MallocInterposerSwift.unhook()
        MallocInterposerSwift.setAllocationHook(nil)
        let allocations = watchedAllocations.load(ordering: .relaxed)
        let after = await worker.getResourceUsage()
        await worker.close()
        await worker.waitForShutdown()
        sink.stop()
        drain.stop()
        let forwarded = after.packetsOut - before.packetsOut
        if allocations > 0 {
            print("first allocation on the forwarder thread, from:")
            for i in 0..<firstStackDepth {
                let address = firstStack[i]
                if let name = rsfu_symbol_name(address) {
                    print("  \(String(cString: name))")
                } else {
                    print("  +0x\(String(rsfu_symbol_offset(address), radix: 16))")
                }
            }
        }
        let scenario = (iceTcp ? "WebRTC, consumers over ICE-TCP (SRTP \(publisherKey?.suite.rawValue ?? "?"))"
                        : webrtc ? "WebRTC (ICE, DTLS, SRTP \(publisherKey?.suite.rawValue ?? "?"))" : srtp ? "SRTP" : "plain RTP") + (simulcast ? ", simulcast" : "") + (loss > 0 ? ", \(loss) % reported lost" : "")
        print("\(scenario): forwarded \(forwarded) packets (\(after.packetsIn - before.packetsIn) in, \(expectedOut) consumers each, \(after.transportCcFeedback - before.transportCcFeedback) transport-cc feedback packets, \(after.retransmitted - before.retransmitted) retransmitted, \(sink.feedbackSent) feedback from the sink, \(after.probePackets - before.probePackets) probes); forwarder-thread allocations: \(allocations)")
        if MallocInterposerSwift.getStatistics().mallocCount == 0 {
            print("error: the malloc interposer is not preloaded (LD_PRELOAD)")
            throw ExitCode(2)
        }
        guard forwarded >= UInt64(packets) else {
            print("error: forwarded fewer packets than requested (\(after))")
            throw ExitCode(3)
        }
        if loss > 0 && after.retransmitted == before.retransmitted {
            print("error: nothing was retransmitted")
            throw ExitCode(4)
        }
        if allocations > 0 { throw ExitCode.failure }
    }
}

extension AllocCheck {
    /// The same room over WebRtcTransports: the publisher's socket (bound to
    /// `sourcePort`, where the load generator then sends from) and the sink's
    /// socket each pass an ICE check and a DTLS handshake, as a browser's do.
    @RingSFUActor
    static func setUpWebRtcRoom(worker: Worker, consumers n: Int, video: [UInt32], audio: [UInt32], sinkFd: Int32, sourcePort: UInt16, tcpDrain: TcpDrain?) async throws
        -> (port: UInt16, sinkKeys: [UInt16: SrtpKey], rtxPt: UInt8?, publisherKey: SrtpKey) {
        let router = try worker.createRouter(mediaCodecs: Fanout.roomCodecs)
        let options = WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: "udp", ip: "127.0.0.1")])
        let ingest = try router.createWebRtcTransport(options)
        let publisher = try WebRtcPeer()
        try ingest.connect(dtlsParameters: publisher.dtlsParameters)
        let producers = try Fanout.produce(on: ingest, video: video, audio: audio, transportCc: true, simulcast: false)
        let port = UInt16(ingest.iceCandidates[0].port)
        let source = bindLoopbackUdp(bufferBytes: 1 << 20, port: sourcePort)
        guard source.port == sourcePort else { close(source.fd); throw WebRtcPeer.Failure(description: "port \(sourcePort) is taken") }
        let publisherKeys: (send: SrtpKey, receive: SrtpKey)
        do { publisherKeys = try publisher.connect(fd: source.fd, port: port, ice: ingest.iceParameters) } catch { close(source.fd); throw error }
        close(source.fd)
        var sinkKeys: [UInt16: SrtpKey] = [:]
        let tcpOptions = WebRtcTransportOptions(listenInfos: [TransportListenInfo(protocol: "tcp", ip: "127.0.0.1")])
        for _ in 0..<n {
            let t = try router.createWebRtcTransport(tcpDrain == nil ? options : tcpOptions)
            let peer = try WebRtcPeer()
            try t.connect(dtlsParameters: peer.dtlsParameters)
            let local = UInt16(t.iceCandidates[0].port)
            if let tcpDrain {
                // What arrives is only drained (the server's counters say
                // what was forwarded): a full socket would stall the sends.
                let fd = try connectTcp(port: local)
                tcpDrain.fds.append(fd)
                _ = try peer.connect(tcp: fd, ice: t.iceParameters)
            } else {
                sinkKeys[local] = try peer.connect(fd: sinkFd, port: local, ice: t.iceParameters).receive
            }
            for p in producers {
                _ = try t.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: router.rtpCapabilities))
            }
        }
        await worker.sync()
        let rtx = (router.rtpCapabilities.codecs ?? []).first { $0.mimeType.lowercased() == "video/rtx" }
        return (port, sinkKeys, rtx?.preferredPayloadType.map { UInt8($0) }, publisherKeys.send)
    }
}

/// A loopback TCP connection with a 100 ms receive timeout.
func connectTcp(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { close(fd); throw WebRtcPeer.Failure(description: "cannot connect to TCP port \(port)") }
    var tv = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// Reads and discards what the server sends on ICE-TCP connections, on
/// its own thread, until stopped.
final class TcpDrain: @unchecked Sendable {
    /// Set up before `start`.
    var fds: [Int32] = []
    private let stopFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private var running = false

    func start() {
        guard !fds.isEmpty else { return }
        running = true
        let fds = self.fds
        Thread { [self] in
            var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            var buf = [UInt8](repeating: 0, count: 65536)
            while !stopFlag.load(ordering: .relaxed) {
                guard poll(&polls, nfds_t(polls.count), 100) > 0 else { continue }
                for p in polls where p.revents != 0 { _ = recv(p.fd, &buf, buf.count, Int32(MSG_DONTWAIT)) }
            }
            done.signal()
        }.start()
    }

    func stop() {
        if running { stopFlag.store(true, ordering: .relaxed); done.wait() }
        for fd in fds { close(fd) }
    }
}
