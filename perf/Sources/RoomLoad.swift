import ArgumentParser
import Foundation
import Histogram
import HummingbirdWSClient
import Logging
import RingSFU
import RingSFUCShims
import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// A room on a running `ringsfu serve`, loaded with real WebRTC
/// participants: each publisher and subscriber gets a WebRtcTransport over
/// the JSON-RPC API and passes an ICE check and a DTLS handshake on its own
/// socket as a browser does; publishers then send SRTP video (frame bursts
/// at the given rate), subscribers receive and decrypt every copy.
struct RoomLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "room",
        abstract: "Load a running server with WebRTC publishers and subscribers (ICE, DTLS, SRTP) over its JSON-RPC API.")

    @Option(help: "The server's JSON-RPC endpoint (ws://host:port/rpc).")
    var target: String

    @Option(help: "Bearer token for the endpoint (the admin token: worker figures are the admin's to read).")
    var token: String?

    @Option(help: "Publishers, one video track each.")
    var publishers = 1

    @Option(help: "Subscribers, each receiving every publisher's track; a comma-separated list runs one room per count, one after the other (CPU per packet against subscribers).")
    var subscribers = "10"

    var sizes: [Int] { subscribers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    @Option(help: "Video packets per second of a publisher's (top) stream, about: 30 fps frame bursts whose sizes are scaled to it (key frames every 2 s).")
    var videoPps: Double = 250

    @Option(help: "Measured seconds (after 1 s of warm-up).")
    var duration: Double = 10

    @Option(help: "CPU for the load threads (publishers' senders and the subscribers' receiver).")
    var loadCpu: Int?

    @Flag(help: "Each publisher sends 720p-like simulcast: three encodings at about 1/12, 1/4 and all of the top one's bytes (one producer); subscribers receive the top layer.")
    var simulcast = false

    @Flag(help: "Act as browsers do on feedback: subscribers send transport-wide congestion feedback every 50 ms (the server's send-side estimation picks their simulcast layers by it) and publishers answer key frame requests.")
    var feedback = false

    @Option(help: "Percent of each publisher's video packets lost on the way to the server (with --feedback they are NACKed and resent as RTX).")
    var publisherLoss = 0.0

    @Option(help: "Another node of the target's cluster (ws://host:port/rpc): the room is joined by name (room.join), its publishers on the target (the room's home) and its subscribers through this node (a mirror fed by the cluster's UDP pipe).")
    var cascadeVia: String?

    @Option(help: "Workers the room spans: the publishers on the first, the subscribers spread over all, each further worker's router fed by pipeToRouter (as a room spills).")
    var workers = 1

    @Option(help: "Receiver threads, each with its own socket; subscribers are spread over them (so the load side is not what sets the latency).")
    var receivers = 1

    @Option(help: "Write the summary, timeline and run metadata as JSON to this file.")
    var json: String?

    @Option(help: "Write charts as SVG: PREFIX-throughput.svg (packets/s sent and received over time).")
    var svg: String?

    func validate() throws {
        guard (1...64).contains(publishers) else { throw ValidationError("--publishers takes 1 to 64") }
        guard !sizes.isEmpty, sizes.count == subscribers.split(separator: ",").count, sizes.allSatisfy({ (1...2000).contains($0) }) else {
            throw ValidationError("--subscribers takes counts from 1 to 2000, e.g. 100 or 100,200,400")
        }
        guard videoPps > 0, duration > 0 else { throw ValidationError("--video-pps and --duration must be positive") }
        guard (1...16).contains(receivers) else { throw ValidationError("--receivers takes 1 to 16") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers takes 1 to 64") }
        guard (0...50).contains(publisherLoss) else { throw ValidationError("--publisher-loss takes 0 to 50 (percent)") }
    }

    func say(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

    /// One room of `n` subscribers, start to end (its own connection: closing it closes the room).
    func runRoom(subscribers n: Int, rpcUrl: String, config: WebSocketClientConfiguration) async throws -> (Summary, [Second]) {
        let sinks = (0..<receivers).map { _ in Sink(cpu: loadCpu) }
        for s in sinks { s.trackFreezes = true }
        let box = RoomResultBox()
        let me = self
        try await WebSocketClient.connect(url: rpcUrl, configuration: config, logger: Logger(label: "ringsfu-perf")) { inbound, outbound, _ in
            if let via = me.cascadeVia {
                // The subscribers' node: a connection of its own.
                try await WebSocketClient.connect(url: via, configuration: config, logger: Logger(label: "ringsfu-perf")) { inbound2, outbound2, _ in
                    box.set(try await me.load(RemoteRoom(inbound: inbound, outbound: outbound), sinks: sinks, subscribers: n,
                                              via: RemoteRoom(inbound: inbound2, outbound: outbound2)))
                    try await outbound2.close(.normalClosure, reason: nil)
                }
            } else {
                box.set(try await me.load(RemoteRoom(inbound: inbound, outbound: outbound), sinks: sinks, subscribers: n))
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
        for s in sinks { s.stop() }
        if feedback { say("transport-cc feedback packets the subscribers sent: \(sinks.reduce(0) { $0 + $1.feedbackSent })") }
        guard let result = box.value else { throw ValidationError("the run against \(rpcUrl) did not complete") }
        // Let the server close the room before the next one.
        try await Task.sleep(for: .milliseconds(500))
        return result
    }

    func run() async throws {
        var metadata = RunMetadata()
        try SrtpLibrary.initialize(openssl: true)
        let rpcUrl = target.hasSuffix("/rpc") ? target : target + (target.hasSuffix("/") ? "rpc" : "/rpc")
        var config = WebSocketClientConfiguration(maxFrameSize: 1 << 22)
        if let token { config.additionalHeaders[.authorization] = "Bearer \(token)" }
        var runs: [(Summary, [Second])] = []
        for n in sizes {
            let (summary, timeline) = try await runRoom(subscribers: n, rpcUrl: rpcUrl, config: config)
            runs.append((summary, timeline))
            report(summary)
        }
        metadata.finished = Date()
        let (summary, timeline) = runs[runs.count - 1]
        if runs.count > 1 {
            print("| subscribers | server out pps | Mbps | CPU-s / M packets | loss % | freezes | p50 / p99 us |")
            print("|---|---|---|---|---|---|---|")
            for (s, t) in runs {
                let pps = t.isEmpty ? 0 : t.map { Double($0.serverOutPps) }.reduce(0, +) / Double(t.count)
                print(String(format: "| %d | %.0f | %.1f | %.2f | %.3f | %d | %.0f / %.0f |", s.subscribers, pps, s.serverOutMbps, s.serverCpuPerMillionPackets,
                             s.lossPercent, s.freezes, s.latencyUs.p50, s.latencyUs.p99))
            }
        }
        try write(runs: runs, summary: summary, timeline: timeline, metadata: metadata)
        if runs.contains(where: { $0.0.received == 0 }) { throw ExitCode(2) }
    }

    func report(_ summary: Summary) {
        print("room: \(publishers) publishers x \(summary.subscribers) subscribers, \(Int(videoPps)) video packets/s each, \(duration) s")
        print("| track | ssrc | sent by publisher | received by server | forwarded |")
        print("|---|---|---|---|---|")
        for t in summary.tracks { print("| \(t.producerId.prefix(8)) | \(t.ssrc) | \(t.publisherSent) | \(t.serverReceived) | \(t.serverForwarded) |") }
        print(String(format: "joined %d in %.0f ms median (%.0f max); subscribers received %d of %d (loss %.3f %%); latency p50 %.0f us, p99 %.0f us; %d tracks decoding, freezes %d (%.0f ms)",
                     summary.participants, summary.joinMsMedian, summary.joinMsMax, summary.received, summary.expected, summary.lossPercent,
                     summary.latencyUs.p50, summary.latencyUs.p99, summary.decodingTracks, summary.freezes, summary.frozenMs))
    }

    /// `--json` (the last room's summary and timeline, and every room's) and `--svg`.
    func write(runs: [(Summary, [Second])], summary: Summary, timeline: [Second], metadata: RunMetadata) throws {
        if let json {
            struct Run: Codable { var summary: Summary; var timeline: [Second] }
            struct Output: Codable { var metadata: RunMetadata; var settings: [String: String]; var summary: Summary; var timeline: [Second]; var runs: [Run] }
            let settings = ["target": target, "publishers": "\(publishers)", "subscribers": "\(subscribers)", "videoPps": "\(videoPps)", "duration": "\(duration)", "receivers": "\(receivers)", "simulcast": "\(simulcast)", "workers": "\(workers)"]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            try encoder.encode(Output(metadata: metadata, settings: settings, summary: summary, timeline: timeline,
                                      runs: runs.map { Run(summary: $0.0, timeline: $0.1) })).write(to: URL(fileURLWithPath: json))
        }
        if let svg {
            let t = timeline.map { Double($0.t) }
            try SvgChart(title: "Room: \(publishers) x \(subscribers), packets per second", xLabel: "seconds", yLabel: "packets/s", series: [
                .init(name: "sent by publishers", points: Array(zip(t, timeline.map { Double($0.sentPps) })).map { (x: $0.0, y: $0.1) }),
                .init(name: "received by subscribers", points: Array(zip(t, timeline.map { Double($0.receivedPps) })).map { (x: $0.0, y: $0.1) }),
                .init(name: "sent by the server", points: Array(zip(t, timeline.map { Double($0.serverOutPps) })).map { (x: $0.0, y: $0.1) }),
            ]).render().write(toFile: svg + "-throughput.svg", atomically: true, encoding: .utf8)
            try SvgChart(title: "Room: \(publishers) x \(subscribers), forwarding latency per second", xLabel: "seconds", yLabel: "microseconds", series: [
                .init(name: "p50", points: Array(zip(t, timeline.map(\.p50Us))).map { (x: $0.0, y: $0.1) }),
                .init(name: "p99", points: Array(zip(t, timeline.map(\.p99Us))).map { (x: $0.0, y: $0.1) }),
            ]).render().write(toFile: svg + "-latency.svg", atomically: true, encoding: .utf8)
            let sizes = runs.map { Double($0.0.subscribers) }
            try SvgChart(title: "Room: \(publishers) publisher(s), server CPU per forwarded packet", xLabel: "subscribers", yLabel: "CPU-s per million packets", series: [
                .init(name: "CPU-s / M packets", points: Array(zip(sizes, runs.map(\.0.serverCpuPerMillionPackets))).map { (x: $0.0, y: $0.1) }),
            ]).render().write(toFile: svg + "-cpu.svg", atomically: true, encoding: .utf8)
        }
    }

    /// Builds the room, runs it, and reads the figures.
    func load(_ rpc: RemoteRoom, sinks: [Sink], subscribers: Int, via: RemoteRoom? = nil) async throws -> (Summary, [Second]) {
        // One router per worker the room spans, the publishers on the first.
        guard case .array(let listed) = try await rpc.call("worker.list", .object([:])), listed.count >= workers else {
            throw RemoteRoom.RemoteError(description: "the server has fewer than \(workers) workers")
        }
        var routers: [(id: String, workerId: String, caps: JSONValue)] = []
        // The workers whose figures count: the room's, or every worker of both nodes of a cascade.
        var counted: [(RemoteRoom, String)] = []
        let roomName = "perf-\(subscribers)-\(UInt32.random(in: 0...UInt32.max))"
        if via != nil {
            let joined = try await rpc.call("room.join", .object(["room": .string(roomName)]))
            routers.append((joined["routerId"]?.stringValue ?? "", "", joined["rtpCapabilities"] ?? .null))
            counted = listed.compactMap { $0["id"]?.stringValue }.map { (rpc, $0) }
        }
        for w in listed.prefix(via == nil ? workers : 0) {
            let router = try await rpc.call("worker.createRouter", .object(["mediaCodecs": .encoding(Fanout.roomCodecs), "workerId": w["id"] ?? .null]))
            guard let id = router["id"]?.stringValue, let workerId = router["workerId"]?.stringValue else {
                throw RemoteRoom.RemoteError(description: "unexpected createRouter result \(router)")
            }
            routers.append((id, workerId, router["rtpCapabilities"] ?? .null))
            counted.append((rpc, workerId))
        }
        let routerId = routers[0].id
        let listen: JSONValue = .array([.object(["protocol": .string("udp"), "ip": .string("127.0.0.1")])])
        var joinMs: [Double] = []
        /// A WebRtcTransport, connected with `peer`'s DTLS parameters: its id, port and ICE parameters.
        func transport(_ peer: WebRtcPeer, on routerId: String, via rpc: RemoteRoom = rpc) async throws -> (String, UInt16, IceParameters) {
            let t = try await rpc.call("router.createWebRtcTransport", .object(["routerId": .string(routerId), "listenInfos": listen]))
            let id = t["id"]?.stringValue ?? ""
            let ice = try (t["iceParameters"] ?? .null).decode(IceParameters.self, field: "iceParameters")
            let port = UInt16(t["iceCandidates"]?.firstElement?["port"]?.numberValue ?? 0)
            _ = try await rpc.call("transport.connect", .object(["transportId": .string(id), "dtlsParameters": .encoding(peer.dtlsParameters)]))
            return (id, port, ice)
        }
        // Publishers: ICE and DTLS from a socket whose port the sender then uses.
        var generators: [LoadGenerator] = [], tracks: [(id: String, ssrc: UInt32)] = []
        for i in 0..<publishers {
            let start = Date()
            let peer = try WebRtcPeer()
            let (id, port, ice) = try await transport(peer, on: routerId)
            // Simulcast: the layers' SSRCs, lowest first; the top one is what subscribers get.
            let ssrcs = simulcast ? (0..<3).map { 10_000 + UInt32(i) * 10 + UInt32($0) } : [10_000 + UInt32(i)]
            let ssrc = ssrcs[ssrcs.count - 1]
            // With --feedback, as a browser: NACK, PLI and FIR negotiated, RTX for repairs.
            let vp8 = RtpCodecParameters(mimeType: "video/VP8", payloadType: 96, clockRate: 90000, rtcpFeedback: feedback ? [
                RtcpFeedback(type: "nack"), RtcpFeedback(type: "nack", parameter: "pli"), RtcpFeedback(type: "ccm", parameter: "fir")] : [])
            let rtx = RtpCodecParameters(mimeType: "video/rtx", payloadType: Int(LoadGenerator.rtxPayloadType), clockRate: 90000, parameters: ["apt": 96])
            let params = JSONValue.encoding(RtpParameters(codecs: feedback ? [vp8, rtx] : [vp8], encodings: ssrcs.map {
                RtpEncodingParameters(ssrc: $0, rtx: feedback ? RtxParameters(ssrc: $0 + 500) : nil) }, rtcp: RtcpParameters(cname: "perf-\(i)")))
            let p = try await rpc.call("transport.produce", .object(["transportId": .string(id), "kind": .string("video"), "rtpParameters": params]))
            let source = bindLoopbackUdp(bufferBytes: 1 << 20)
            let keys: (send: SrtpKey, receive: SrtpKey)
            do { keys = try peer.connect(fd: source.fd, port: port, ice: ice) } catch { close(source.fd); throw error }
            let generator = LoadGenerator(destination: ("127.0.0.1", port), videoSsrcs: ssrcs, audioSsrcs: [], videoPps: videoPps, mode: .realistic,
                                          cpu: loadCpu, sourcePort: source.port, srtpKey: keys.send)
            // Unscaled frames make about 250 packets/s.
            generator.sourceFd = source.fd // the generator sends from the socket ICE used, and closes it
            (generator.answersFeedback, generator.feedbackKey) = (feedback, keys.receive)
            if feedback { generator.rtxSsrcs = ssrcs.map { $0 + 500 } }
            generator.lossFraction = publisherLoss / 100
            let scale = videoPps / 250
            generator.videoScales = (simulcast ? [1.0 / 12, 0.25, 1] : [1]).map { $0 * scale }
            generators.append(generator)
            tracks.append((p["id"]?.stringValue ?? "", ssrc))
            joinMs.append(Date().timeIntervalSince(start) * 1000)
            say("publisher \(i + 1)/\(publishers) joined in \(Int(joinMs.last!)) ms")
        }
        // The other workers' routers get every track through a pipe.
        for r in routers.dropFirst() {
            for track in tracks {
                _ = try await rpc.call("router.pipeToRouter", .object(["routerId": .string(routerId), "producerId": .string(track.id), "targetRouterId": .string(r.id)]))
            }
        }
        // A cascade: the subscribers join the room through the other node.
        var subscriberRouters = routers, subscriberRpc = rpc
        if let via {
            let joined = try await via.call("room.join", .object(["room": .string(roomName)]))
            subscriberRouters = [(joined["routerId"]?.stringValue ?? "", "", joined["rtpCapabilities"] ?? .null)]
            subscriberRpc = via
            guard case .array(let remote) = try await via.call("worker.list", .object([:])) else { throw RemoteRoom.RemoteError(description: "no workers on \(cascadeVia ?? "")") }
            counted += remote.compactMap { $0["id"]?.stringValue }.map { (via, $0) }
        }
        // Subscribers: all on the sink's socket (each its own server transport).
        var consumersOf: [String: [String]] = [:]
        for i in 0..<subscribers {
            let start = Date()
            let peer = try WebRtcPeer()
            let router = subscriberRouters[i % subscriberRouters.count]
            let (id, port, ice) = try await transport(peer, on: router.id, via: subscriberRpc)
            let sink = sinks[i % sinks.count]
            let keys = try peer.connect(fd: sink.fd, port: port, ice: ice)
            sink.srtpByPort[port] = keys.receive
            if feedback { sink.srtcpByPort[port] = keys.send }
            for track in tracks {
                let c = try await subscriberRpc.call("transport.consume", .object(["transportId": .string(id), "producerId": .string(track.id), "rtpCapabilities": router.caps]))
                if feedback, case .array(let exts)? = c["rtpParameters"]?["headerExtensions"],
                   let cc = exts.first(where: { $0["uri"]?.stringValue == Fanout.transportCcUri })?["id"]?.numberValue { sink.transportCcId = UInt8(cc) }
                if case .array(let codecs)? = c["rtpParameters"]?["codecs"], let pt = codecs.first?["payloadType"]?.numberValue { sink.videoPayloadType = UInt8(pt) }
                consumersOf[track.id, default: []].append(c["id"]?.stringValue ?? "")
            }
            joinMs.append(Date().timeIntervalSince(start) * 1000)
            if (i + 1) % max(1, subscribers / 10) == 0 || i + 1 == subscribers { say("subscribers joined: \(i + 1)/\(subscribers)") }
        }
        for s in sinks { s.start() }
        for g in generators { g.start() }
        try await Task.sleep(for: .seconds(1))
        // What each subscriber should get: every packet, or the top layer's.
        func sent() -> UInt64 {
            generators.reduce(0) { $0 + (simulcast ? $1.sentLastVideo.load(ordering: .relaxed) : $1.sentVideo.load(ordering: .relaxed)) }
        }
        // The room's workers together.
        func usage() async throws -> (UInt64, UInt64, Double) {
            var out: UInt64 = 0, bytes: UInt64 = 0, cpu = 0.0
            for (server, workerId) in counted {
                let u = try await server.figures(workerId: workerId)
                out += u.packets
                bytes += u.bytes
                cpu += u.cpu
            }
            return (out, bytes, cpu)
        }
        for s in sinks { s.beginWindow(); _ = s.takeInterval() }
        /// Everything the receivers got so far, with the latencies of this interval.
        func peek() -> (UInt64, Histogram<UInt64>, Int, Double) {
            var received: UInt64 = 0, freezes = 0, frozenMs = 0.0
            var interval = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            for s in sinks {
                received += s.peekWindow().0
                interval.add(s.takeInterval())
                let f = s.freezes()
                freezes += f.count
                frozenMs += f.frozenMs
            }
            return (received, interval, freezes, frozenMs)
        }
        let s0 = sent()
        var (lastOut, lastBytes, lastCpu) = try await usage()
        let (firstOut, firstBytes, firstCpu) = (lastOut, lastBytes, lastCpu)
        var lastSent = s0, lastReceived: UInt64 = 0
        var timeline: [Second] = []
        let seconds = max(1, Int(duration.rounded(.up)))
        for t in 1...seconds {
            try await Task.sleep(for: .seconds(min(1, duration - Double(t - 1))))
            let (out, bytes, cpu) = try await usage()
            let (received, histogram, freezes, frozenMs) = peek()
            let now = sent()
            let expected = Double(now - s0) * Double(subscribers)
            let second = Second(t: t, sentPps: now - lastSent, receivedPps: received - lastReceived, serverOutPps: out - lastOut,
                                serverOutMbps: Double(bytes - lastBytes) * 8 / 1e6, serverCpuPercent: (cpu - lastCpu) * 100, lossPercent: expected > 0 ? max(0, 1 - Double(received) / expected) * 100 : 0,
                                p50Us: Double(histogram.valueAtPercentile(50)), p99Us: Double(histogram.valueAtPercentile(99)),
                                freezes: freezes, frozenMs: frozenMs)
            timeline.append(second)
            say(String(format: "%3d s: sent %5d/s, received %7d/s, server out %7d/s (%.1f Mbps), server CPU %3.0f %%, loss %.3f %%, p50 %.0f us, p99 %.0f us, freezes %d",
                       t, second.sentPps, second.receivedPps, second.serverOutPps, second.serverOutMbps, second.serverCpuPercent, second.lossPercent,
                       second.p50Us, second.p99Us, second.freezes))
            (lastOut, lastBytes, lastCpu, lastSent, lastReceived) = (out, bytes, cpu, now, received)
        }
        let s1 = sent()
        // Freezes while the publishers still send (once they stop, every track freezes).
        var freezes = 0, frozenMs = 0.0, decoding = 0
        for s in sinks {
            let f = s.freezes()
            freezes += f.count
            frozenMs += f.frozenMs
            decoding += f.decoding
        }
        for g in generators { g.stop() }
        if feedback {
            say("key frame requests the publishers answered: \(generators.reduce(0) { $0 + $1.keyFrameRequestsReceived.load(ordering: .relaxed) }), "
                + "packets they resent on NACKs: \(generators.reduce(0) { $0 + $1.retransmitted.load(ordering: .relaxed) })")
        }
        try await Task.sleep(for: .milliseconds(300))
        var received: UInt64 = 0
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for s in sinks {
            let (r, h) = s.endWindow()
            received += r
            histogram.add(h)
        }
        var summaries: [Track] = []
        for (k, track) in tracks.enumerated() {
            let p = try await rpc.call("producer.getStats", .object(["producerId": .string(track.id)]))
            var forwarded = 0
            for cid in consumersOf[track.id] ?? [] {
                let c = try await subscriberRpc.call("consumer.getStats", .object(["consumerId": .string(cid)]))
                forwarded += Int(c.firstElement?["packetCount"]?.numberValue ?? 0)
            }
            summaries.append(Track(producerId: track.id, ssrc: track.ssrc, publisherSent: generators[k].sentVideo.load(ordering: .relaxed),
                                   serverReceived: p.totalPacketCount, serverForwarded: forwarded))
        }
        let expected = (s1 - s0) * UInt64(subscribers)
        let sorted = joinMs.sorted()
        let packetsOut = Double(lastOut - firstOut), window = Double(seconds)
        let summary = Summary(subscribers: subscribers, participants: publishers + subscribers, joinMsMedian: sorted[sorted.count / 2], joinMsMax: sorted.last ?? 0,
                              sent: s1 - s0, expected: expected, received: received,
                              lossPercent: expected > 0 ? max(0, 1 - Double(received) / Double(expected)) * 100 : 0,
                              latencyUs: .init(p50: Double(histogram.valueAtPercentile(50)), p99: Double(histogram.valueAtPercentile(99)),
                                               p999: Double(histogram.valueAtPercentile(99.9))),
                              freezes: freezes, frozenMs: frozenMs, decodingTracks: decoding,
                              serverCpuPerMillionPackets: packetsOut > 0 ? (lastCpu - firstCpu) / packetsOut * 1e6 : 0,
                              serverOutMbps: Double(lastBytes - firstBytes) * 8 / 1e6 / window, tracks: summaries)
        return (summary, timeline)
    }
}

/// Carries the run's figures out of the WebSocket handler.
final class RoomResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (RoomLoad.Summary, [RoomLoad.Second])?
    var value: (RoomLoad.Summary, [RoomLoad.Second])? { lock.withLock { stored } }
    func set(_ v: (RoomLoad.Summary, [RoomLoad.Second])) { lock.withLock { stored = v } }
}

extension JSONValue {
    /// An array's first element (stats come as arrays), nil otherwise.
    fileprivate var firstElement: JSONValue? { if case .array(let a) = self { a.first } else { nil } }
    /// The packets of every entry of a stats array (a simulcast producer has one per layer).
    fileprivate var totalPacketCount: Int {
        guard case .array(let a) = self else { return 0 }
        return a.reduce(0) { $0 + Int($1["packetCount"]?.numberValue ?? 0) }
    }
}
