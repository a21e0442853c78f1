import ArgumentParser
import Foundation
import Histogram
import HummingbirdWSClient
import Logging
import RingSFU
import RingSFUForwarder
import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

@main
struct RingSFUPerf: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringsfu-perf",
        abstract: "Benchmarks for RingSFU's forwarder (build with -c release).",
        subcommands: [Fanout.self, RoomLoad.self, Scale.self, AllocCheck.self, SrtpBench.self, Soak.self]
    )
}

/// One measured run, in the JSON shape other tools read.
struct RunFigures: Codable {
    struct Latency: Codable { var p50: Double; var p99: Double; var p999: Double }
    var offeredPps: Double
    var forwardedPps: Double
    var loss: Double
    var cpuSecondsPerMillion: Double
    var latencyUs: Latency
    var sendCallsPerPacket: Double?
    /// Packets resent in answer to the sink's NACKs (--loss), per second.
    var retransmittedPps: Double? = nil
    /// Padding probes the worker sent (--consumer-cc), per second.
    var probePps: Double? = nil
}

struct RunResult: Codable {
    var consumers: Int
    var mode: String
    var offeredPps: Double
    var forwardedPps: Double
    var loss: Double
    var cpuSecondsPerMillion: Double
    var latencyUs: RunFigures.Latency
    var sendCallsPerPacket: Double?
    var retransmittedPps: Double?
    var probePps: Double?
    var baseline: RunFigures?

    init(consumers: Int, mode: String, sfu: RunFigures, baseline: RunFigures?) {
        self.consumers = consumers
        self.mode = mode
        offeredPps = sfu.offeredPps
        forwardedPps = sfu.forwardedPps
        loss = sfu.loss
        cpuSecondsPerMillion = sfu.cpuSecondsPerMillion
        latencyUs = sfu.latencyUs
        sendCallsPerPacket = sfu.sendCallsPerPacket
        retransmittedPps = sfu.retransmittedPps
        probePps = sfu.probePps
        self.baseline = baseline
    }
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One producer fanned out to N consumers over plain RTP on loopback.")

    @Option(help: "Comma-separated consumer counts.")
    var consumers = "1,10,50"

    @Option(help: "Measured seconds per run (after 1 s of warm-up).")
    var duration: Double = 5

    @Option(help: "Target output packets per second (input rate = output / consumers).")
    var outputPps: Double = 100_000

    @Option(help: "Traffic: synthetic (identical 1200-byte packets) or realistic (video frames + Opus).")
    var traffic: String = "synthetic"

    @Flag(help: "Also run the recvmmsg/sendmmsg baseline forwarder on the same core.")
    var baseline = false

    @Flag(help: "Disable UDP GSO batching in the worker.")
    var noGso = false

    @Option(help: "WorkerSettings.coalesceMicroseconds: how long completions may gather before a loop turn (0: none).")
    var coalesceUs: Int?

    @Option(help: "CPU for the SFU worker (and the baseline).")
    var sfuCpu = 0

    @Option(help: "CPU for the load generator and the sink.")
    var loadCpu = 1

    @Option(help: "Runs per configuration, SFU and baseline alternating; the median run (by CPU per packet) is reported.")
    var repeatCount = 1

    @Option(help: "SRTP on both legs: aes-cm (AES_CM_128_HMAC_SHA1_80) or gcm (AEAD_AES_128_GCM); the generator protects, the sink unprotects.")
    var srtp: String?

    var srtpSuite: SrtpCryptoSuite? {
        switch srtp {
        case "aes-cm": .aesCm128HmacSha1_80
        case "gcm": .aeadAes128Gcm
        default: nil
        }
    }

    @Option(help: "Drive a running `ringsfu serve` at this ws:// URL (its /rpc endpoint) instead of an in-process worker.")
    var target: String?

    @Option(help: "With --target: the server's admin token (the worker's counters are the admin's to read).")
    var token: String?

    @Option(help: "Simulated downstream loss in percent: the sink NACKs this share of the video packets it receives, so the SFU retransmits them (RTX) from its packet store.")
    var loss: Double = 0

    @Option(help: "Packets in the worker's retransmission store (WorkerSettings.retransmissionBufferPackets; the worker's default when not given).")
    var retransmissionPackets: Int?

    @Flag(help: "Negotiate transport-wide CC on the ingest: the generator numbers every packet in the extension and the worker records arrivals and sends feedback.")
    var transportCc = false

    @Flag(help: "Consumers negotiate transport-wide CC too (as browsers do): the worker numbers every copy, keeps a send history per transport and estimates from the sink's feedback (every 50 ms); without it they consume without the extension.")
    var consumerCc = false

    @Flag(help: "The producer on one worker, the consumers on a second worker (same CPU), fed through pipeToRouter's in-process ring: CPU is both forwarder threads'; compare with a run without it for the cost of a pipe hop.")
    var pipeHop = false

    @Flag(help: "With --pipe-hop: the hop is a PipeTransport pair over loopback UDP with SRTP and RTX, as between cluster nodes, instead of the in-process ring.")
    var udpPipe = false

    @Option(help: "Write the results as JSON to this file (with the run's metadata: version, host, CPU, kernel, command, settings, start and end).")
    var json: String?

    @Option(help: "Write charts as SVG: PREFIX-cpu.svg (CPU per forwarded packet against consumers) and PREFIX-latency.svg (p50 and p99 against consumers).")
    var svg: String?

    @Flag(help: "No progress lines on stderr while runs go on.")
    var quiet = false

    func run() async throws {
        guard let mode = TrafficMode(rawValue: traffic) else { throw ValidationError("--traffic must be synthetic or realistic") }
        if srtp != nil && srtpSuite == nil { throw ValidationError("--srtp takes aes-cm or gcm") }
        if srtp != nil && (baseline || target != nil) { throw ValidationError("--srtp runs the in-process worker only (no --baseline, no --target)") }
        if loss > 0 && (srtp != nil || target != nil) { throw ValidationError("--loss runs the in-process worker without SRTP") }
        if transportCc && target != nil { throw ValidationError("--transport-cc runs the in-process worker only (no --target)") }
        if consumerCc && (target != nil || srtp != nil || baseline) { throw ValidationError("--consumer-cc runs the in-process worker without SRTP (the sink sends plain feedback)") }
        if udpPipe && !pipeHop { throw ValidationError("--udp-pipe goes with --pipe-hop") }
        if pipeHop && (target != nil || consumerCc || loss > 0) { throw ValidationError("--pipe-hop runs in-process workers (no --target, --consumer-cc or --loss)") }
        guard loss >= 0 && loss < 100 else { throw ValidationError("--loss takes a percentage from 0 to 100") }
        if srtpSuite != nil { try SrtpLibrary.initialize(openssl: true) }
        let counts = consumers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--consumers takes positive integers, e.g. 1,10,50") }
        var results: [RunResult] = []
        var metadata = RunMetadata()
        for n in counts {
            var sfuRuns: [RunFigures] = [], baseRuns: [RunFigures] = []
            for run in 0..<max(1, repeatCount) {
                progress("N=\(n) run \(run + 1)/\(max(1, repeatCount)): \(Int(inputRate(n))) packets/s in, \(Int(outputPps)) out expected, \(Int(duration)) s after 1 s of warm-up")
                if let target {
                    sfuRuns.append(try await runRemote(url: target, consumers: n, mode: mode))
                } else {
                    sfuRuns.append(try await runSfu(consumers: n, mode: mode))
                }
                if baseline { baseRuns.append(runBaseline(consumers: n, mode: mode)) }
            }
            results.append(RunResult(consumers: n, mode: mode.rawValue, sfu: median(sfuRuns), baseline: baseRuns.isEmpty ? nil : median(baseRuns)))
        }
        printTable(results)
        metadata.finished = Date()
        if let json {
            struct Output: Codable { var metadata: RunMetadata; var settings: Settings; var runs: [RunResult] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            try encoder.encode(Output(metadata: metadata, settings: settingsRecord, runs: results)).write(to: URL(fileURLWithPath: json))
        }
        if let svg { try writeCharts(results, prefix: svg) }
    }

    func inputRate(_ n: Int) -> Double { outputPps / Double(n) }

    func median(_ runs: [RunFigures]) -> RunFigures {
        runs.sorted { $0.cpuSecondsPerMillion < $1.cpuSecondsPerMillion }[runs.count / 2]
    }

    func figures(sent: UInt64, forwarded: UInt64, cpuNs: Int64, received: UInt64, histogram: Histogram<UInt64>, consumers: Int, sendCalls: UInt64?) -> RunFigures {
        let expected = Double(sent) * Double(consumers)
        let loss = expected > 0 ? max(0, 1 - Double(received) / expected) : 0
        return RunFigures(
            offeredPps: Double(sent) / duration,
            forwardedPps: Double(forwarded) / duration,
            loss: loss,
            cpuSecondsPerMillion: forwarded > 0 ? (Double(cpuNs) / 1e9) / (Double(forwarded) / 1e6) : .nan,
            latencyUs: .init(p50: Double(histogram.valueAtPercentile(50)), p99: Double(histogram.valueAtPercentile(99)), p999: Double(histogram.valueAtPercentile(99.9))),
            sendCallsPerPacket: sendCalls.map { forwarded > 0 ? Double($0) / Double(forwarded) : 0 })
    }

    /// Realistic mode: how many video+audio stream pairs give the input rate
    /// (a stream pair is about 255 video + 50 audio packets per second).
    func streams(_ n: Int, _ mode: TrafficMode) -> Int {
        mode == .synthetic ? 1 : max(1, Int((inputRate(n) / 305).rounded()))
    }

    static func ssrcs(_ streams: Int, _ mode: TrafficMode) -> (video: [UInt32], audio: [UInt32]) {
        (Array((0..<streams).map { 10_000 + UInt32($0) }), mode == .synthetic ? [] : Array((0..<streams).map { 50_000 + UInt32($0) }))
    }

    static let transportCcId: UInt8 = 5

    func runSfu(consumers n: Int, mode: TrafficMode) async throws -> RunFigures {
        let p = streams(n, mode)
        let (video, audio) = Self.ssrcs(p, mode)
        var settings = WorkerSettings(logLevel: "warning", rtcMinPort: 20000, rtcMaxPort: 39999, cpu: sfuCpu, gso: !noGso, maxTransports: n + 8, maxProducers: 2 * p + 8, maxConsumers: 2 * p * n + 8, retransmissionBufferPackets: retransmissionPackets)
        settings.coalesceMicroseconds = coalesceUs
        let worker = try await Worker.create(settings)
        // --pipe-hop: the consumers' worker, on the same CPU (thread CPU times add up).
        let second = pipeHop ? try await Worker.create(settings) : nil
        let sink = Sink(cpu: loadCpu)
        let listen = TransportListenInfo(protocol: "udp", ip: "127.0.0.1")
        let publisherKey = srtpSuite.map { suite in
            SrtpKey(suite: suite, key: (0..<suite.keyLength).map { _ in UInt8.random(in: 0...255) })
        }
        let (ingestPort, threadId, sinkKeys, rtxPt) = try await setUpRoom(worker: worker, consumers: n, video: video, audio: audio, sinkPort: sink.port, listen: listen, srtp: publisherKey, transportCc: transportCc,
                                                                              consumerCc: consumerCc, consumersOn: second)
        let secondThread = await second?.forwarderThread
        func cpuNs() -> Int64 { rsfu_thread_cpu_ns(pthread_t(threadId)) + (secondThread.map { rsfu_thread_cpu_ns(pthread_t($0)) } ?? 0) }
        let out = second ?? worker
        sink.srtpByPort = sinkKeys
        if consumerCc { sink.transportCcId = try await Self.consumerTransportCcId(worker) }
        sink.nackFraction = loss / 100
        sink.rtxPayloadType = rtxPt
        sink.start()
        let generator = LoadGenerator(destination: ("127.0.0.1", ingestPort), videoSsrcs: video, audioSsrcs: audio, videoPps: inputRate(n), mode: mode, cpu: loadCpu, srtpKey: publisherKey)
        if transportCc { generator.transportCcId = Self.transportCcId }
        generator.start()
        try await Task.sleep(for: .seconds(1))
        let u0 = await out.getResourceUsage()
        let cpu0 = cpuNs()
        let s0 = generator.sentVideo.load(ordering: .relaxed) + generator.sentAudio.load(ordering: .relaxed)
        sink.beginWindow()
        // One progress line a second: what went out over that second.
        var last = u0.packetsOut, lastCpu = cpu0
        let seconds = max(1, Int(duration.rounded(.up)))
        for s in 1...seconds {
            try await Task.sleep(for: .seconds(min(1, duration - Double(s - 1))))
            let u = await out.getResourceUsage(), c = cpuNs()
            progress("  \(s)/\(seconds) s: \(u.packetsOut - last) packets out, CPU \(String(format: "%.0f", Double(c - lastCpu) / 1e7)) % of a core")
            last = u.packetsOut
            lastCpu = c
        }
        let cpu1 = cpuNs()
        let u1 = await out.getResourceUsage()
        let s1 = generator.sentVideo.load(ordering: .relaxed) + generator.sentAudio.load(ordering: .relaxed)
        generator.stop()
        try await Task.sleep(for: .milliseconds(200))
        let (received, histogram) = sink.endWindow()
        sink.stop()
        for w in [worker] + (second.map { [$0] } ?? []) {
            await w.close()
            await w.waitForShutdown()
        }
        let resent = u1.retransmitted - u0.retransmitted
        let probes = u1.probePackets - u0.probePackets
        // CPU per first transmission: with --loss the retransmissions are
        // the cost, with --consumer-cc the probes.
        var result = figures(sent: s1 - s0, forwarded: u1.packetsOut - u0.packetsOut - resent - probes, cpuNs: cpu1 - cpu0, received: received, histogram: histogram, consumers: n, sendCalls: u1.sendCalls - u0.sendCalls)
        if loss > 0 { result.retransmittedPps = Double(resent) / duration }
        if consumerCc { result.probePps = Double(probes) / duration }
        return result
    }


    /// The same room on a running server; its CPU figure is the server's
    /// forwarder-thread CPU as reported by `worker.getResourceUsage`.
    func runRemote(url: String, consumers n: Int, mode: TrafficMode) async throws -> RunFigures {
        let p = streams(n, mode)
        let (video, audio) = Self.ssrcs(p, mode)
        let sink = Sink(cpu: loadCpu)
        sink.start()
        let result = ResultBox()
        let rpcUrl = url.hasSuffix("/rpc") ? url : url + (url.hasSuffix("/") ? "rpc" : "/rpc")
        let duration = self.duration, loadCpu = self.loadCpu, rate = inputRate(n)
        var config = WebSocketClientConfiguration(maxFrameSize: 1 << 22)
        if let token { config.additionalHeaders[.authorization] = "Bearer \(token)" }
        try await WebSocketClient.connect(url: rpcUrl, configuration: config, logger: Logger(label: "ringsfu-perf")) { inbound, outbound, _ in
            let room = RemoteRoom(inbound: inbound, outbound: outbound)
            try await room.setUp(consumers: n, video: video, audio: audio, sinkPort: sink.port)
            let generator = LoadGenerator(destination: ("127.0.0.1", room.ingestPort), videoSsrcs: video, audioSsrcs: audio, videoPps: rate, mode: mode, cpu: loadCpu)
            generator.start()
            try await Task.sleep(for: .seconds(1))
            let (out0, cpu0) = try await room.usage()
            let s0 = generator.sentVideo.load(ordering: .relaxed) + generator.sentAudio.load(ordering: .relaxed)
            sink.beginWindow()
            try await Task.sleep(for: .seconds(duration))
            let (out1, cpu1) = try await room.usage()
            let s1 = generator.sentVideo.load(ordering: .relaxed) + generator.sentAudio.load(ordering: .relaxed)
            generator.stop()
            try await Task.sleep(for: .milliseconds(200))
            let (received, histogram) = sink.endWindow()
            result.set(sent: s1 - s0, forwarded: out1 - out0, cpuNs: Int64((cpu1 - cpu0) * 1e9), received: received, histogram: histogram)
            // Closing the connection closes the room on the server.
            try await outbound.close(.normalClosure, reason: nil)
        }
        sink.stop()
        guard let r = result.value else { throw ValidationError("the run against \(rpcUrl) did not complete") }
        return figures(sent: r.sent, forwarded: r.forwarded, cpuNs: r.cpuNs, received: r.received, histogram: r.histogram, consumers: n, sendCalls: nil)
    }

    /// The codecs of every benchmark room: Opus and VP8.
    static let roomCodecs = [
        RtpCodecCapability(kind: .audio, mimeType: "audio/opus", clockRate: 48000, channels: 2),
        RtpCodecCapability(kind: .video, mimeType: "video/VP8", clockRate: 90000),
    ]

    /// With `simulcast`, every three video SSRCs are the three encodings of
    /// one producer, and the consumers are simulcast consumers.
    @RingSFUActor
    func setUpRoom(worker: Worker, consumers n: Int, video: [UInt32], audio: [UInt32], sinkPort: UInt16, listen: TransportListenInfo, srtp: SrtpKey? = nil, transportCc: Bool = false,
                   simulcast: Bool = false, consumerCc: Bool = false, consumersOn second: Worker? = nil) async throws -> (UInt16, UInt, [UInt16: SrtpKey], UInt8?) {
        let home = try worker.createRouter(mediaCodecs: Self.roomCodecs)
        // With a second worker the consumers' router is there, the producers piped to it.
        let router = try second?.createRouter(mediaCodecs: Self.roomCodecs) ?? home
        let ingest = try home.createPlainTransport(PlainTransportOptions(listenInfo: listen, comedia: true, enableSrtp: srtp != nil, srtpCryptoSuite: srtp?.suite.rawValue))
        if let srtp {
            try ingest.connect(srtpParameters: SrtpParameters(cryptoSuite: srtp.suite.rawValue, keyBase64: Data(srtp.key).base64EncodedString()))
        }
        var sinkKeys: [UInt16: SrtpKey] = [:]
        var producers = try Self.produce(on: ingest, video: video, audio: audio, transportCc: transportCc, simulcast: simulcast)
        if router !== home {
            producers = try udpPipe ? Self.pipeOverUdp(producers, from: home, to: router)
                : producers.map { try home.pipeToRouter(producerId: $0.id, router: router).pipeProducer }
        }
        for _ in 0..<n {
            let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: listen, enableSrtp: srtp != nil, srtpCryptoSuite: srtp?.suite.rawValue))
            if let srtp, let mine = t.srtpParameters, let key = Data(base64Encoded: mine.keyBase64) {
                // The sink's own key is never used: it only receives.
                try t.connect(ip: "127.0.0.1", port: Int(sinkPort), srtpParameters: SrtpParameters(cryptoSuite: srtp.suite.rawValue, keyBase64: Data(srtp.key).base64EncodedString()))
                sinkKeys[UInt16(t.tuple.localPort)] = SrtpKey(suite: srtp.suite, key: Array(key))
            } else {
                try t.connect(ip: "127.0.0.1", port: Int(sinkPort))
            }
            for p in producers {
                _ = try t.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: consumerCc ? router.rtpCapabilities : Self.withoutTransportCc(router.rtpCapabilities)))
            }
        }
        await worker.sync()
        await second?.sync()
        let rtx: RtpCodecCapability? = (router.rtpCapabilities.codecs ?? []).first { $0.mimeType.lowercased() == "video/rtx" }
        let rtxPt: UInt8? = rtx?.preferredPayloadType.map { UInt8($0) }
        return (UInt16(ingest.tuple.localPort), worker.forwarderThread, sinkKeys, rtxPt)
    }

    func runBaseline(consumers n: Int, mode: TrafficMode) -> RunFigures {
        let sink = Sink(cpu: loadCpu)
        sink.start()
        let fwd = BaselineForwarder(consumers: n, sinkPort: sink.port, cpu: sfuCpu)
        fwd.start()
        let (video, audio) = Self.ssrcs(streams(n, mode), mode)
        let generator = LoadGenerator(destination: ("127.0.0.1", fwd.port), videoSsrcs: video, audioSsrcs: audio, videoPps: inputRate(n), mode: mode, cpu: loadCpu)
        generator.start()
        Thread.sleep(forTimeInterval: 1)
        let tid = pthread_t(fwd.threadId.load(ordering: .relaxed))
        let f0 = fwd.forwarded.load(ordering: .relaxed)
        let cpu0 = rsfu_thread_cpu_ns(tid)
        let s0 = generator.sentVideo.load(ordering: .relaxed) + generator.sentAudio.load(ordering: .relaxed)
        sink.beginWindow()
        Thread.sleep(forTimeInterval: duration)
        let cpu1 = rsfu_thread_cpu_ns(tid)
        let f1 = fwd.forwarded.load(ordering: .relaxed)
        let s1 = generator.sentVideo.load(ordering: .relaxed) + generator.sentAudio.load(ordering: .relaxed)
        generator.stop()
        Thread.sleep(forTimeInterval: 0.2)
        let (received, histogram) = sink.endWindow()
        sink.stop()
        fwd.stop()
        return figures(sent: s1 - s0, forwarded: f1 - f0, cpuNs: cpu1 - cpu0, received: received, histogram: histogram, consumers: n, sendCalls: nil)
    }

}

/// Carries a remote run's raw figures out of the WebSocket handler.
final class ResultBox: @unchecked Sendable {
    struct Value { var sent: UInt64; var forwarded: UInt64; var cpuNs: Int64; var received: UInt64; var histogram: Histogram<UInt64> }
    private let lock = NSLock()
    private var stored: Value?
    var value: Value? { lock.withLock { stored } }
    func set(sent: UInt64, forwarded: UInt64, cpuNs: Int64, received: UInt64, histogram: Histogram<UInt64>) {
        lock.withLock { stored = Value(sent: sent, forwarded: forwarded, cpuNs: cpuNs, received: received, histogram: histogram) }
    }
}
