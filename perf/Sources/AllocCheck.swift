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

    func run() async throws {
        MallocInterposerSwift.initialize()
        let worker = try await Worker.create(WorkerSettings(logLevel: "warning", rtcMinPort: 20000, rtcMaxPort: 39999, maxTransports: 64, maxProducers: 128, maxConsumers: 1024))
        let sink = Sink(cpu: nil)
        let (video, audio) = Fanout.ssrcs(40, .realistic)
        let suite = SrtpCryptoSuite.aesCm128HmacSha1_80
        let publisherKey = srtp ? SrtpKey(suite: suite, key: (0..<suite.keyLength).map { _ in UInt8.random(in: 0...255) }) : nil
        let (port, thread, sinkKeys, rtxPt) = try await Fanout().setUpRoom(worker: worker, consumers: consumers, video: video, audio: audio, sinkPort: sink.port,
                                                                        listen: TransportListenInfo(protocol: "udp", ip: "127.0.0.1"), srtp: publisherKey, transportCc: true,
                                                                        simulcast: simulcast)
        sink.srtpByPort = sinkKeys
        sink.nackFraction = loss / 100
        sink.rtxPayloadType = rtxPt
        sink.start()
        // A simulcast consumer forwards one encoding of three.
        let expectedOut = UInt64(consumers)
        let share: UInt64 = simulcast ? 3 : 1

        // Warm up: every code path of the loop has run at least once.
        let sourcePort = UInt16.random(in: 40000...49999)
        let warm = LoadGenerator(destination: ("127.0.0.1", port), videoSsrcs: video, audioSsrcs: audio, videoPps: 0, mode: .realistic, cpu: nil, sourcePort: sourcePort, srtpKey: publisherKey)
        // Transport-wide sequence numbers too: arrivals recorded, feedback sent.
        warm.transportCcId = Fanout.transportCcId
        warm.start()
        try await Task.sleep(for: .seconds(1))
        // ...including a round of RTCP reports (every 1-1.5 s): first uses
        // of some code instantiate type metadata, which allocates once.
        // (Transport-wide CC feedback counts as RTCP out too, and starts sooner.)
        for _ in 0..<50 where await { let u = await worker.getResourceUsage(); return u.rtcpOut - u.transportCcFeedback }() == 0 {
            try await Task.sleep(for: .milliseconds(100))
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
        let scenario = (srtp ? "SRTP" : "plain RTP") + (simulcast ? ", simulcast" : "") + (loss > 0 ? ", \(loss) % reported lost" : "")
        print("\(scenario): forwarded \(forwarded) packets (\(after.packetsIn - before.packetsIn) in, \(expectedOut) consumers each, \(after.transportCcFeedback - before.transportCcFeedback) transport-cc feedback packets, \(after.retransmitted - before.retransmitted) retransmitted); forwarder-thread allocations: \(allocations)")
        if MallocInterposerSwift.getStatistics().mallocCount == 0 {
            print("error: the malloc interposer is not preloaded (LD_PRELOAD)")
            throw ExitCode(2)
        }
        guard forwarded >= UInt64(packets) else {
            print("error: forwarded fewer packets than requested")
            throw ExitCode(3)
        }
        if loss > 0 && after.retransmitted == before.retransmitted {
            print("error: nothing was retransmitted")
            throw ExitCode(4)
        }
        if allocations > 0 { throw ExitCode.failure }
    }
}
