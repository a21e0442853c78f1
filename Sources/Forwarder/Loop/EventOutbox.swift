import Dispatch
import RingSFUCShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Events from the forwarder thread to the control plane, handed over
/// without allocating on that thread: they are appended to an array whose
/// capacity was reserved up front, under a lock (events are rare: state
/// changes, scores, traces), and an eventfd is written when the array was
/// empty. A dispatch source on the control side swaps the array with a
/// second reserved one and delivers the events in order. (An AsyncStream
/// yielded to from the forwarder thread allocated now and then: its
/// buffer grew, or the waiting consumer's bookkeeping did.)
final class EventOutbox: @unchecked Sendable {
    static let reserved = 1024
    private let pending = Mutex<[ForwarderEvent]>({ var a = [ForwarderEvent](); a.reserveCapacity(EventOutbox.reserved); return a }())
    /// Owned by the drain queue: the array swapped in on each drain.
    private var spare: [ForwarderEvent]
    private let notifyFd: Int32
    private let source: any DispatchSourceRead
    private let deliver: @Sendable (ForwarderEvent) -> Void

    init?(deliver: @escaping @Sendable (ForwarderEvent) -> Void) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { return nil }
        notifyFd = fd
        self.deliver = deliver
        spare = []
        spare.reserveCapacity(Self.reserved)
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: DispatchQueue(label: "ringsfu.forwarder-events"))
        source.setEventHandler { [weak self] in self?.drain() }
        source.setCancelHandler { close(fd) }
        source.resume()
    }

    deinit { source.cancel() }

    /// On the forwarder thread.
    func post(_ event: ForwarderEvent) {
        let wasEmpty = pending.withLock { items -> Bool in
            items.append(event)
            return items.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(notifyFd, &one, 8)
        }
    }

    /// On the drain queue: everything posted so far, in order.
    private func drain() {
        var counter: UInt64 = 0
        _ = read(notifyFd, &counter, 8)
        var batch = spare
        spare = []
        pending.withLock { swap(&$0, &batch) }
        for event in batch { deliver(event) }
        batch.removeAll(keepingCapacity: true)
        spare = batch
    }
}
