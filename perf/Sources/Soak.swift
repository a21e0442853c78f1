import ArgumentParser
import Foundation
import HummingbirdWSClient
import Logging
import RingSFU
import RingSFUCShims

/// A long run of `ringsfu serve` under steady load with clients coming and
/// going: memory, file descriptors and entity counts must level off, and no
/// packet may be lost below saturation.
struct Soak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run `ringsfu serve` under a steady fan-out with client churn; fail on growth or loss.")

    @Option(help: "Seconds to run (after warm-up).")
    var duration: Double = 60

    @Option(help: "Seconds of warm-up before the baseline is taken.")
    var warmup: Double = 10

    @Option(help: "Seconds between samples.")
    var sample: Double = 10

    @Option(help: "Steady load: output packets per second (about 80 % of what one worker forwards without loss on the 2-core machine).")
    var outputPps: Double = 80_000

    @Option(help: "Consumers of the steady room.")
    var consumers = 10

    @Option(help: "Clients joining per second; each builds a small graph (transports, producer, consumer, data channel) and leaves after 1-5 s.")
    var churn = 1

    @Option(help: "Largest RSS growth of the server after warm-up, in MiB.")
    var maxRssGrowthMib = 64.0

    @Option(help: "Largest growth of the server's open file descriptors after warm-up.")
    var maxFdGrowth = 32

    @Option(help: "The ringsfu binary (default: beside this one).")
    var server: String?

    @Option(help: "Write the samples as JSON to this file.")
    var json: String?

    struct Sample: Codable {
        var t: Double
        var rssMib: Double
        var fds: Int
        var sockets: Int
        var routers: Int
        var transports: Int
        var producers: Int
        var consumers: Int
        var clientsJoined: Int
        var clientsFailed: Int
        var sent: UInt64
        var received: UInt64
    }

    func run() async throws {
        let binary = server ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ringsfu").path
        let port = Int.random(in: 20000...29999)
        let admin = "soak-admin-" + UUID().uuidString.lowercased()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--port", "\(port)", "--workers", "1", "--log-level", "error",
                             "--admin-token", admin, "--rtc-min-port", "30000", "--rtc-max-port", "39999"]
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let pid = process.processIdentifier
        try await Task.sleep(for: .seconds(1.5))
        let url = "ws://127.0.0.1:\(port)/rpc"
        let config = WebSocketClientConfiguration(maxFrameSize: 1 << 22, additionalHeaders: [.authorization: "Bearer \(admin)"])
        let sink = Sink(cpu: nil)
        sink.start()
        defer { sink.stop() }
        let (video, audio) = Fanout.ssrcs(1, .synthetic)
        let result = ResultBox()
        let churnStats = ChurnStats()
        let started = Date()
        let total = warmup + duration
        print("soak: \(outputPps) output packets/s to \(consumers) consumers, \(churn) client(s) joining per second, \(Int(total)) s, sample every \(Int(sample)) s")
        print("| t s | RSS MiB | fds | sockets | routers | transports | producers | consumers | clients joined | failed | loss |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        try await WebSocketClient.connect(url: url, configuration: config, logger: Logger(label: "soak")) { inbound, outbound, _ in
            let room = RemoteRoom(inbound: inbound, outbound: outbound)
            try await room.setUp(consumers: consumers, video: video, audio: audio, sinkPort: sink.port)
            let generator = LoadGenerator(destination: ("127.0.0.1", room.ingestPort), videoSsrcs: video, audioSsrcs: audio,
                                          videoPps: outputPps / Double(consumers), mode: .synthetic, cpu: nil)
            generator.start()
            // Clients join every second and leave after a while.
            let churner = Task {
                var n = 0
                while !Task.isCancelled {
                    for _ in 0..<churn {
                        n += 1
                        let lifetime = Double(1 + n % 5)
                        Task { await Self.visit(url: url, lifetime: lifetime, stats: churnStats) }
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            defer { churner.cancel() }
            var samples: [Sample] = []
            sink.beginWindow()
            let sent0 = generator.sentVideo.load(ordering: .relaxed)
            var next = sample
            while Date().timeIntervalSince(started) < total {
                try await Task.sleep(for: .seconds(max(0, next - Date().timeIntervalSince(started))))
                next += sample
                let u = try await room.call("worker.getResourceUsage", .object([:]))
                let (received, _) = sink.peekWindow()
                let sent = (generator.sentVideo.load(ordering: .relaxed) - sent0) * UInt64(consumers)
                let s = Sample(t: Date().timeIntervalSince(started), rssMib: Self.rssMib(pid), fds: Self.fds(pid).0, sockets: Self.fds(pid).1,
                               routers: Int(u["routers"]?.numberValue ?? -1), transports: Int(u["transports"]?.numberValue ?? -1),
                               producers: Int(u["producers"]?.numberValue ?? -1), consumers: Int(u["consumers"]?.numberValue ?? -1),
                               clientsJoined: await churnStats.joined, clientsFailed: await churnStats.failed, sent: sent, received: received)
                samples.append(s)
                let loss = sent > 0 ? max(0, Double(Int64(sent) - Int64(received))) / Double(sent) : 0
                print(String(format: "| %.0f | %.1f | %d | %d | %d | %d | %d | %d | %d | %d | %.4f%% |", s.t, s.rssMib, s.fds, s.sockets,
                             s.routers, s.transports, s.producers, s.consumers, s.clientsJoined, s.clientsFailed, loss * 100))
            }
            // The last packets reach the sink before the final count.
            churner.cancel()
            generator.stop()
            try await Task.sleep(for: .milliseconds(500))
            let sent = (generator.sentVideo.load(ordering: .relaxed) - sent0) * UInt64(consumers)
            let (received, _) = sink.peekWindow()
            if var last = samples.last {
                last.sent = sent
                last.received = received
                samples[samples.count - 1] = last
            }
            await result.set(samples)
        }
        let samples = await result.samples
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(samples).write(to: URL(fileURLWithPath: json))
        }
        // Judged from the first sample after warm-up on.
        var failures: [String] = []
        let steady = samples.filter { $0.t >= warmup }
        if let base = steady.first, let last = steady.last {
            let rssGrowth = steady.map(\.rssMib).max()! - base.rssMib
            let fdGrowth = steady.map(\.fds).max()! - base.fds
            if rssGrowth > maxRssGrowthMib { failures.append(String(format: "RSS grew by %.1f MiB after warm-up (bound %.0f)", rssGrowth, maxRssGrowthMib)) }
            if fdGrowth > maxFdGrowth { failures.append("open file descriptors grew by \(fdGrowth) after warm-up (bound \(maxFdGrowth))") }
            // Entities: the steady room plus at most the clients alive at once (5 s x churn, each 1 router, 4 transports).
            if last.routers > 1 + 6 * churn { failures.append("\(last.routers) routers at the end: churned clients' entities are not closed") }
            if last.sent > 0, last.received < last.sent { failures.append("\(last.sent - last.received) of \(last.sent) packets lost below saturation") }
            if last.clientsFailed > 0 { failures.append("\(last.clientsFailed) of \(last.clientsJoined) clients failed to build their graph") }
            print(String(format: "after warm-up: RSS %+.1f MiB, fds %+d; %d clients joined and left; %llu packets forwarded to the sink, %llu lost",
                         rssGrowth, fdGrowth, last.clientsJoined, last.received, last.sent > last.received ? last.sent - last.received : 0))
        } else {
            failures.append("no sample after warm-up")
        }
        // The server shuts down cleanly too.
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { failures.append("the server did not exit within 10 s of SIGTERM") }
        else if process.terminationStatus != 0 { failures.append("the server exited with \(process.terminationStatus) on SIGTERM") }
        if failures.isEmpty {
            print("soak: passed")
        } else {
            for f in failures { print("soak: FAILED: \(f)") }
            throw ExitCode.failure
        }
    }

    actor ResultBox {
        var samples: [Sample] = []
        func set(_ s: [Sample]) { samples = s }
    }

    actor ChurnStats {
        var joined = 0
        var failed = 0
        func join() { joined += 1 }
        func fail() { failed += 1 }
    }

    /// One client: a small graph of each kind, held for `lifetime`, then
    /// the connection drops and the server closes everything it made.
    static func visit(url: String, lifetime: Double, stats: ChurnStats) async {
        await stats.join()
        do {
            try await WebSocketClient.connect(url: url, logger: Logger(label: "soak.client")) { inbound, outbound, _ in
                let c = RemoteRoom(inbound: inbound, outbound: outbound)
                let codecs = JSONValue.encoding([RtpCodecCapability(kind: .audio, mimeType: "audio/opus", clockRate: 48000, channels: 2)])
                let router = try await c.call("worker.createRouter", .object(["mediaCodecs": codecs]))
                let routerId = JSONValue.string(router["id"]?.stringValue ?? "")
                let listen: JSONValue = .object(["protocol": .string("udp"), "ip": .string("127.0.0.1")])
                let ingest = try await c.call("router.createPlainTransport", .object(["routerId": routerId, "listenInfo": listen, "comedia": .bool(true)]))
                let egress = try await c.call("router.createPlainTransport", .object(["routerId": routerId, "listenInfo": listen]))
                _ = try await c.call("router.createWebRtcTransport", .object(["routerId": routerId, "listenInfos": .array([listen]), "enableSctp": .bool(true)]))
                let params = JSONValue.encoding(RtpParameters(codecs: [RtpCodecParameters(mimeType: "audio/opus", payloadType: 111, clockRate: 48000, channels: 2)],
                                                              encodings: [RtpEncodingParameters(ssrc: UInt32.random(in: 1...UInt32.max))], rtcp: RtcpParameters(cname: "soak")))
                let producer = try await c.call("transport.produce", .object(["transportId": ingest["id"] ?? .null, "kind": .string("audio"), "rtpParameters": params]))
                _ = try await c.call("transport.consume", .object(["transportId": egress["id"] ?? .null, "producerId": producer["id"] ?? .null,
                                                                   "rtpCapabilities": router["rtpCapabilities"] ?? .null]))
                let direct = try await c.call("router.createDirectTransport", .object(["routerId": routerId]))
                let data = try await c.call("transport.produceData", .object(["transportId": direct["id"] ?? .null]))
                _ = try await c.call("transport.consumeData", .object(["transportId": direct["id"] ?? .null, "dataProducerId": data["id"] ?? .null]))
                _ = try await c.call("dataProducer.send", .object(["dataProducerId": data["id"] ?? .null, "text": .string("hello")]))
                try await Task.sleep(for: .seconds(lifetime))
            }
        } catch {
            await stats.fail()
        }
    }

    static func rssMib(_ pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kb / 1024
    }

    /// Open file descriptors of the process, and how many are sockets.
    static func fds(_ pid: Int32) -> (Int, Int) {
        let dir = "/proc/\(pid)/fd"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return (-1, -1) }
        let sockets = entries.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)"))?.hasPrefix("socket:") == true }.count
        return (entries.count, sockets)
    }
}
