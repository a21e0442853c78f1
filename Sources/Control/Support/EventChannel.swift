/// Fan-out of an entity's events to any number of `AsyncStream` readers.
/// Lives inside the control plane's isolation domain; emitting is
/// synchronous so a closure cascade's events keep their order.
final class EventChannel<Event: Sendable> {
    private var continuations: [Int: AsyncStream<Event>.Continuation] = [:]
    private var nextId = 0
    private(set) var finished = false

    /// A new reader. A reader that subscribes after `finish()` gets an
    /// already finished sequence.
    func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        if finished {
            continuation.finish()
            return stream
        }
        continuations[nextId] = continuation
        nextId += 1
        return stream
    }

    func emit(_ event: Event) {
        for c in continuations.values { c.yield(event) }
    }

    /// Ends every sequence: the close event must have been emitted first.
    func finish() {
        guard !finished else { return }
        finished = true
        for c in continuations.values { c.finish() }
        continuations = [:]
    }
}
