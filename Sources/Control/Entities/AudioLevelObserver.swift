import Foundation
import RingSFUForwarder

/// Options of `router.createAudioLevelObserver`, with mediasoup's names.
public struct AudioLevelObserverOptions: Codable, Sendable {
    /// Most producers reported per `volumes` event (default 1).
    public var maxEntries: Int?
    /// Lowest average volume (dBov, -127...0) that counts as sound (default -80).
    public var threshold: Int?
    /// Reporting interval in milliseconds (default 1000, at least 250).
    public var interval: Int?
    public var appData: AppData?

    public init(maxEntries: Int? = 1, threshold: Int? = -80, interval: Int? = 1000, appData: AppData? = nil) {
        self.maxEntries = maxEntries
        self.threshold = threshold
        self.interval = interval
        self.appData = appData
    }
}

public struct AudioLevelObserverVolume: Sendable {
    public var producer: Producer
    /// Average volume over the interval, in dBov (-127...0, 0 is loudest).
    public var volume: Int
}

public enum AudioLevelObserverEvent: Sendable {
    /// The loudest producers above the threshold, loudest first.
    case volumes([AudioLevelObserverVolume])
    /// No producer above the threshold (sent once until sound returns).
    case silence
    case routerClose
}

/// Reports the loudest audio producers of a router from their RFC 6464
/// ssrc-audio-level header extension.
@RingSFUActor
public final class AudioLevelObserver: RtpObserver {
    public nonisolated let maxEntries: Int
    public nonisolated let threshold: Int
    public nonisolated let interval: Int
    private var silent = true
    private let eventChannel = EventChannel<AudioLevelObserverEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: AudioLevelObserverEvent) {
        eventChannel.emit(event)
        worker?.published(.audioLevelObserver(id, event))
    }

    init(router: Router, worker: Worker, handle: Handle, maxEntries: Int, threshold: Int, interval: Int, appData: AppData) {
        self.maxEntries = maxEntries
        self.threshold = threshold
        self.interval = interval
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    static func make(router: Router, worker: Worker, options: AudioLevelObserverOptions) throws(SFUError) -> AudioLevelObserver {
        let maxEntries = options.maxEntries ?? 1
        let threshold = options.threshold ?? -80
        let interval = options.interval ?? 1000
        guard maxEntries >= 1 else { throw .invalidArgument("invalid maxEntries \(maxEntries) (at least 1)") }
        guard (-127...0).contains(threshold) else { throw .invalidArgument("invalid threshold \(threshold) (-127 to 0)") }
        guard interval >= 250 else { throw .invalidArgument("invalid interval \(interval) (at least 250 ms)") }
        guard let handle = worker.forwarder.observerHandles.allocate() else { throw .failure("too many observers in this worker") }
        worker.forwarder.send(.addAudioLevelObserver(handle: handle, router: router.handle, intervalMs: UInt32(interval)))
        return AudioLevelObserver(router: router, worker: worker, handle: handle, maxEntries: maxEntries, threshold: threshold, interval: interval, appData: options.appData ?? [:])
    }

    public var events: AsyncStream<AudioLevelObserverEvent> { eventChannel.subscribe() }

    override func emitRouterClose() { publish(.routerClose) }
    override func finishChannels() {
        eventChannel.finish()
        super.finishChannels()
    }

    /// The forwarder's sums for one interval.
    override func intervalEnded(_ samples: [AudioLevelSample]) {
        guard !closed, !paused else { return }
        var entries: [(Producer, Int)] = []
        for s in samples where s.count > 0 {
            guard let producer = producers.values.first(where: { $0.handle == s.producer }) else { continue }
            // Levels are -dBov; the average volume is their negated mean.
            let volume = -Int((Double(s.levelSum) / Double(s.count)).rounded())
            if volume >= threshold { entries.append((producer, volume)) }
        }
        entries.sort { $0.1 > $1.1 }
        let top = entries.prefix(maxEntries)
        if top.isEmpty {
            guard !silent else { return }
            silent = true
            publish(.silence)
        } else {
            silent = false
            publish(.volumes(top.map { AudioLevelObserverVolume(producer: $0.0, volume: $0.1) }))
        }
    }
}
