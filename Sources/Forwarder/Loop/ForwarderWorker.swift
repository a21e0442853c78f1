import RingSFUCShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sizes and placement of one forwarder worker. Everything is allocated
/// once when the thread starts.
package struct ForwarderSettings: Sendable {
    /// CPU to pin the worker thread to, or nil to leave it to the scheduler.
    package var cpu: Int? = nil
    package var ringEntries: UInt32 = 4096
    /// How long completions may gather before a turn (see
    /// `WorkerSettings.coalesceMicroseconds`), and how many end the wait.
    package var coalesceMicroseconds: UInt32 = 300
    package var coalesceCompletions: UInt32 = 32
    /// Receive buffers in the provided buffer ring (a power of two).
    package var receiveBuffers: Int = 4096
    package var bufferSize: Int = 2048
    package var sendSlots: Int = 16384
    package var sendMessages: Int = 8192
    /// Packets to one consumer gathered into one UDP GSO send (1 disables GSO).
    package var maxSegmentsPerSend: Int = SendMessage.maxSegments
    package var maxRouters: UInt32 = 1024
    package var maxTransports: UInt32 = 8192
    package var maxProducers: UInt32 = 8192
    package var maxConsumers: UInt32 = 32768
    package var maxObservers: UInt32 = 256
    /// Pipe rings to other workers (and from them).
    package var maxPipeLinks: UInt32 = 64
    package var maxWebRtcServers: UInt32 = 16
    /// ICE-TCP connections, each with a receive buffer and a send ring.
    package var maxTcpConnections = 128
    package var tcpSendBufferSize = 64 * 1024
    /// An accepted TCP connection must pass a STUN check within this time.
    package var tcpIdleTimeoutMs = 10_000
    /// Connections still without a valid STUN check that one listener, or
    /// one source address (all ports, all listeners), may hold: beyond it
    /// new ones are refused, so one peer cannot take the worker's table.
    package var maxPendingTcpPerListener = 32
    package var maxPendingTcpPerSource = 16
    /// ICE consent freshness timeout (RFC 7675: 30 s).
    package var iceConsentTimeoutMs = 30_000
    /// DTLS certificate and key (PEM); a self-signed ECDSA P-256 one when nil.
    package var dtlsCertificateFile: String? = nil
    package var dtlsPrivateKeyFile: String? = nil
    package var ssrcTableBits = 15
    /// Packets kept for answering NACKs, shared by the worker's producers
    /// (each slot holds one packet buffer): 2 s of 16k packets/s.
    package var retransmissionSlots = 32768
    /// Longest a video packet is resent after it arrived (mediasoup's 2 s);
    /// audio gets half (mediasoup's 1 s).
    package var retransmissionMaxAgeMs = 2000
    /// Transports that can give transport-wide congestion feedback at once
    /// (each holds an 8 KiB arrival ring); others still forward, unacknowledged.
    package var maxTransportCcTransports = 1024
    /// Transports that estimate their outgoing bitrate from their
    /// endpoint's transport-wide feedback (each holds a 32 KiB send history).
    package var maxSendSideTransports = 256
    /// Seed of the worker's random choices (report spreading, RTX sequence
    /// starts); nil draws one from the system. Tests fix it to replay a run.
    package var randomSeed: UInt64? = nil

    package init() {}
}

package enum ForwarderStartError: Error, Sendable, Equatable {
    case ring(Int32)
    case bufferRing(Int32)
    case eventfd(Int32)
    case thread(Int32)
    case dtls
}

/// The control plane's handle on one forwarder thread: the command queue,
/// the eventfd that wakes the ring, the handle spaces and the lifecycle.
/// Everything packet-related lives in `ForwarderLoop` on the thread itself.
package final class ForwarderWorker: @unchecked Sendable {
    package let settings: ForwarderSettings
    package let routerHandles: HandleSpace
    package let transportHandles: HandleSpace
    package let producerHandles: HandleSpace
    package let consumerHandles: HandleSpace
    package let observerHandles: HandleSpace
    package let pipeLinkHandles: HandleSpace
    package let serverHandles: HandleSpace
    /// This worker's DTLS identity.
    package let dtls: DtlsContext

    struct CommandQueue {
        var items: [ForwarderCommand] = []
        /// Set when the thread has ended: later commands are answered at once.
        var closed = false
    }
    let commands = Mutex<CommandQueue>(CommandQueue())
    let stopRequested = Atomic<Bool>(false)
    package let eventFd: Int32
    /// Events for the control plane (delivered off this thread).
    private let outbox: EventOutbox
    private let lifecycle = Mutex<Lifecycle>(Lifecycle())
    /// The pthread_t of the running thread (for CPU-time measurement).
    package let threadId = Atomic<UInt>(0)

    struct Lifecycle {
        var started = false
        var finished = false
        var startWaiter: CheckedContinuation<Void, any Error>? = nil
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Rings to and from other workers, and the workers whose eventfds we
    /// write. Kept until this thread ends.
    struct Pipes {
        var owners: [PipeRingOwner] = []
        var peers: [ForwarderWorker] = []
    }
    let pipes = Mutex<Pipes>(Pipes())

    /// Keeps a ring and its peer alive for as long as this thread may use them.
    package func retain(pipe owner: PipeRingOwner, peer: ForwarderWorker) {
        pipes.withLock { p in
            p.owners.append(owner)
            if !p.peers.contains(where: { $0 === peer }) { p.peers.append(peer) }
        }
    }

    deinit { close(eventFd) }

    package init(settings: ForwarderSettings, onEvent: @escaping @Sendable (ForwarderEvent) -> Void) throws(ForwarderStartError) {
        self.settings = settings
        guard let outbox = EventOutbox(deliver: onEvent) else { throw .eventfd(rsfu_errno()) }
        self.outbox = outbox
        routerHandles = HandleSpace(capacity: settings.maxRouters)
        transportHandles = HandleSpace(capacity: settings.maxTransports)
        producerHandles = HandleSpace(capacity: settings.maxProducers)
        consumerHandles = HandleSpace(capacity: settings.maxConsumers)
        observerHandles = HandleSpace(capacity: settings.maxObservers)
        pipeLinkHandles = HandleSpace(capacity: settings.maxPipeLinks)
        serverHandles = HandleSpace(capacity: settings.maxWebRtcServers)
        do {
            dtls = try DtlsContext(certificateFile: settings.dtlsCertificateFile, privateKeyFile: settings.dtlsPrivateKeyFile)
        } catch {
            throw .dtls
        }
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw .eventfd(rsfu_errno()) }
        eventFd = fd
    }

    /// Hands an event to the control plane; on the forwarder thread,
    /// without allocating (see `EventOutbox`).
    func onEvent(_ event: ForwarderEvent) { outbox.post(event) }

    /// Starts the thread and returns once its ring and memory are ready.
    package func start() async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            lifecycle.withLock { $0.startWaiter = cont; $0.started = true }
            var tid = pthread_t()
            let box = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&tid, nil, { arg in
                let worker = Unmanaged<ForwarderWorker>.fromOpaque(arg!).takeRetainedValue()
                worker.threadMain()
                return nil
            }, box)
            if rc != 0 {
                Unmanaged<ForwarderWorker>.fromOpaque(box).release()
                let waiter = lifecycle.withLock { s -> CheckedContinuation<Void, any Error>? in
                    s.finished = true
                    defer { s.startWaiter = nil }
                    return s.startWaiter
                }
                waiter?.resume(throwing: ForwarderStartError.thread(rc))
            } else {
                pthread_detach(tid)
            }
        }
    }

    /// SCTP bytes handed to the control layer and not yet taken by it, and
    /// the most that may wait.
    package let sctpQueuedBytes = Atomic<Int>(0)
    package static let sctpQueueLimit = 4 << 20

    /// Queues a command and wakes the thread. Safe from any thread.
    package func send(_ command: ForwarderCommand) {
        let queued = commands.withLock { q -> Bool in
            if q.closed { return false }
            q.items.append(command)
            return true
        }
        if queued { wake() } else { ForwarderLoop.answerWithoutLoop([command]) }
    }

    /// Waits until every command sent before this call has been applied.
    package func barrier() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            send(.barrier { cont.resume() })
        }
    }

    package func counters() async -> (ForwarderCounters, ForwarderResources) {
        return await withCheckedContinuation { cont in
            send(.counters { c, r in cont.resume(returning: (c, r)) })
        }
    }

    /// The forwarder thread's getrusage(RUSAGE_THREAD), read on the thread
    /// itself; nil once the thread has ended.
    package func threadUsage() async -> rusage? {
        guard !isFinished else { return nil }
        let caller = pthread_self()
        return await withCheckedContinuation { (cont: CheckedContinuation<rusage?, Never>) in
            send(.barrier {
                // A barrier answered without the loop runs on the caller.
                guard pthread_equal(pthread_self(), caller) == 0 else { cont.resume(returning: nil); return }
                var usage = rusage()
                cont.resume(returning: rsfu_thread_rusage(&usage) == 0 ? usage : nil)
            })
        }
    }

    package func transportFigures() async -> [(Handle, EntityCounters)] {
        return await withCheckedContinuation { cont in
            send(.transportFigures { cont.resume(returning: $0) })
        }
    }

    package func stats(_ target: StatsTarget) async -> EntityCounters {
        return await withCheckedContinuation { cont in
            send(.stats(target) { cont.resume(returning: $0) })
        }
    }

    /// Stops the thread, closes every socket and frees every slab.
    package func stop() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let done = lifecycle.withLock { s -> Bool in
                if s.finished || !s.started { return true }
                s.stopWaiters.append(cont)
                return false
            }
            if done { cont.resume(); return }
            stopRequested.store(true, ordering: .releasing)
            wake()
        }
    }

    package var isFinished: Bool { lifecycle.withLock { $0.finished } }

    func wake() {
        var one: UInt64 = 1
        _ = write(eventFd, &one, 8)
    }

    private func threadMain() {
        threadId.store(UInt(pthread_self()), ordering: .releasing)
        if let cpu = settings.cpu { _ = rsfu_pin_current_thread(Int32(cpu)) }
        var loop: ForwarderLoop
        do {
            loop = try ForwarderLoop(worker: self)
        } catch {
            let waiter = lifecycle.withLock { s -> CheckedContinuation<Void, any Error>? in
                s.finished = true
                defer { s.startWaiter = nil }
                return s.startWaiter
            }
            commands.withLock { $0.closed = true }
            waiter?.resume(throwing: error)
            return
        }
        let waiter = lifecycle.withLock { s -> CheckedContinuation<Void, any Error>? in
            defer { s.startWaiter = nil }
            return s.startWaiter
        }
        waiter?.resume()
        let fatal = loop.run()
        loop.shutdown()
        // Peers may still write our eventfd (it is closed in deinit, when no
        // peer holds us any more); we stop using theirs and our rings now.
        pipes.withLock { $0 = Pipes() }
        // Commands that arrive after the end still get their replies, so no
        // caller waits forever on a dead worker.
        let leftovers = commands.withLock { q -> [ForwarderCommand] in
            q.closed = true
            defer { q.items = [] }
            return q.items
        }
        let stopWaiters = lifecycle.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.finished = true
            defer { s.stopWaiters = [] }
            return s.stopWaiters
        }
        ForwarderLoop.answerWithoutLoop(leftovers)
        if let fatal { onEvent(.died(fatal)) }
        for w in stopWaiters { w.resume() }
    }
}
