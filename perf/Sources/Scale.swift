import ArgumentParser
import Foundation
import RingSFU
import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// Forwarded packets per second at saturation with 1, 2... workers, one
/// fan-out room per worker (worker i pinned to CPU i). The receiving side
/// is a socket per room that nobody reads: the kernel drops what does not
/// fit, so the load side costs next to nothing (the generators send one
/// packet per N forwarded) and every core goes to the workers. What is
/// counted is what the workers sent (their own counters).
struct Scale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forwarded packets/s at saturation with 1, 2... workers (one room per worker, the receivers discarding).")

    @Option(help: "Comma-separated worker counts.")
    var workers = "1,2"

    @Option(help: "Consumers per room.")
    var consumers = 50

    @Option(help: "Input packets per second per room (input x consumers should exceed what a worker forwards).")
    var inputPps: Double = 20_000

    @Option(help: "Measured seconds per run (after 1 s of warm-up).")
    var duration: Double = 5

    @Option(help: "Runs per worker count, alternating.")
    var repeatCount = 3

    func run() async throws {
        let counts = workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...Self.cores).contains($0) }) else {
            throw ValidationError("--workers takes counts from 1 to the number of cores (\(Self.cores))")
        }
        print("consumers=\(consumers) input=\(Int(inputPps)) pps per room, duration=\(duration)s, cores=\(Self.cores)")
        var results: [Int: [(pps: Double, cpu: Double)]] = [:]
        for _ in 0..<max(1, repeatCount) {
            for w in counts {
                let r = try await measure(workers: w)
                results[w, default: []].append(r)
                FileHandle.standardError.write(Data(String(format: "  %d worker(s): %.0f packets/s forwarded, %.2f cores busy\n", w, r.pps, r.cpu).utf8))
            }
        }
        print("| workers | forwarded packets/s (runs) | mean | CPU (cores) | vs 1 worker |")
        print("|---|---|---|---|---|")
        let one = results[1].map { $0.map(\.pps).reduce(0, +) / Double($0.count) }
        for w in counts {
            let runs = results[w] ?? []
            let mean = runs.map(\.pps).reduce(0, +) / Double(max(1, runs.count))
            let cpu = runs.map(\.cpu).reduce(0, +) / Double(max(1, runs.count))
            print("| \(w) | \(runs.map { String(format: "%.0f", $0.pps) }.joined(separator: ", ")) | \(String(format: "%.0f", mean)) | \(String(format: "%.2f", cpu)) | \(one.map { String(format: "%.2fx", mean / $0) } ?? "-") |")
        }
    }

    func measure(workers w: Int) async throws -> (pps: Double, cpu: Double) {
        let fanout = try Fanout.parse([])
        var pool: [Worker] = [], generators: [LoadGenerator] = [], discards: [Int32] = []
        for i in 0..<w {
            let base = 20000 + i * 2000
            let settings = WorkerSettings(logLevel: "warning", rtcMinPort: base, rtcMaxPort: base + 1999, cpu: i, gso: true,
                                          maxTransports: consumers + 8, maxProducers: 8, maxConsumers: consumers + 8)
            let worker = try await Worker.create(settings)
            // A receiver that never reads: 64 KB of buffer, then the kernel drops.
            let discard = bindLoopbackUdp(bufferBytes: 64 << 10)
            let ssrc = 1000 + UInt32(i)
            let (ingest, _, _, _) = try await fanout.setUpRoom(worker: worker, consumers: consumers, video: [ssrc], audio: [], sinkPort: discard.port,
                                                               listen: TransportListenInfo(protocol: "udp", ip: "127.0.0.1"))
            pool.append(worker)
            discards.append(discard.fd)
            generators.append(LoadGenerator(destination: ("127.0.0.1", ingest), videoSsrcs: [ssrc], audioSsrcs: [], videoPps: inputPps, mode: .synthetic, cpu: nil))
        }
        for g in generators { g.start() }
        try await Task.sleep(for: .seconds(1))
        var before: [(UInt64, Double)] = []
        for worker in pool {
            let u = await worker.getResourceUsage()
            before.append((u.packetsOut, u.forwarderCpuSeconds))
        }
        try await Task.sleep(for: .seconds(duration))
        var packets: UInt64 = 0, cpu = 0.0
        for (k, worker) in pool.enumerated() {
            let after = await worker.getResourceUsage()
            packets += after.packetsOut - before[k].0
            cpu += after.forwarderCpuSeconds - before[k].1
        }
        for g in generators { g.stop() }
        for worker in pool {
            await worker.close()
            await worker.waitForShutdown()
        }
        for fd in discards { close(fd) }
        return (Double(packets) / duration, cpu / duration)
    }

    static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }
}
