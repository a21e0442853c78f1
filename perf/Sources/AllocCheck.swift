import ArgumentParser
import Foundation
import MallocInterposerSwift
import RingSFU
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

    func run() async throws {
        MallocInterposerSwift.initialize()
        let worker = try await Worker.create(WorkerSettings(logLevel: "warning", rtcMinPort: 20000, rtcMaxPort: 39999, maxTransports: 64, maxProducers: 128, maxConsumers: 1024))
        let sink = Sink(cpu: nil)
        sink.start()
        let (video, audio) = Fanout.ssrcs(40, .realistic)
        let (port, thread, _, _) = try await Fanout().setUpRoom(worker: worker, consumers: consumers, video: video, audio: audio, sinkPort: sink.port, listen: TransportListenInfo(protocol: "udp", ip: "127.0.0.1"), transportCc: true)
        let expectedOut = UInt64(consumers)

        // Warm up: every code path of the loop has run at least once.
        let sourcePort = UInt16.random(in: 40000...49999)
        let warm = LoadGenerator(destination: ("127.0.0.1", port), videoSsrcs: video, audioSsrcs: audio, videoPps: 0, mode: .realistic, cpu: nil, sourcePort: sourcePort)
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
        warm.stop()
        try await Task.sleep(for: .milliseconds(200))
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
        let gen = LoadGenerator(destination: ("127.0.0.1", port), videoSsrcs: video, audioSsrcs: audio, videoPps: 0, mode: .realistic, cpu: nil, sourcePort: sourcePort)
        gen.transportCcId = Fanout.transportCcId
        gen.start()
        // Each input packet is forwarded to every consumer.
        while gen.sentVideo.load(ordering: .relaxed) * UInt64(consumers) < UInt64(packets) {
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
        print("forwarded \(forwarded) packets (\(after.packetsIn - before.packetsIn) in, \(expectedOut) consumers each, \(after.transportCcFeedback - before.transportCcFeedback) transport-cc feedback packets); forwarder-thread allocations: \(allocations)")
        if MallocInterposerSwift.getStatistics().mallocCount == 0 {
            print("error: the malloc interposer is not preloaded (LD_PRELOAD)")
            throw ExitCode(2)
        }
        guard forwarded >= UInt64(packets) else {
            print("error: forwarded fewer packets than requested")
            throw ExitCode(3)
        }
        if allocations > 0 { throw ExitCode.failure }
    }
}
