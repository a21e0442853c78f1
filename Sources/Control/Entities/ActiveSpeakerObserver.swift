import Foundation
import RingSFUForwarder

/// Options of `router.createActiveSpeakerObserver`.
public struct ActiveSpeakerObserverOptions: Codable, Sendable {
    /// Evaluation interval in milliseconds (default 300, at least 100).
    public var interval: Int?
    public var appData: AppData?

    public init(interval: Int? = 300, appData: AppData? = nil) {
        self.interval = interval
        self.appData = appData
    }
}

public enum ActiveSpeakerObserverEvent: Sendable {
    /// The dominant speaker changed.
    case dominantSpeaker(Producer)
    case routerClose
}

/// Tells which audio producer is the dominant speaker, from the RFC 6464
/// audio levels the forwarder sums per interval.
///
/// Each producer keeps a speech score: an exponential average (weight 1/2
/// per interval) of how far its mean level is above -70 dBov (0 when it is
/// quieter). The speaker with the highest score is dominant; a challenger
/// takes over only with a score 20% above the current speaker's, or when
/// the current speaker has been silent for two intervals, so short
/// interjections do not make the choice flap.
@RingSFUActor
public final class ActiveSpeakerObserver: RtpObserver {
    public nonisolated let interval: Int
    public private(set) var dominantSpeaker: Producer?
    private var scores: [String: Double] = [:]
    private var silentIntervals = 0
    private let eventChannel = EventChannel<ActiveSpeakerObserverEvent>()

    static let speechFloor = 70.0 // -70 dBov

    init(router: Router, worker: Worker, handle: UInt32, interval: Int, appData: AppData) {
        self.interval = interval
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    static func make(router: Router, worker: Worker, options: ActiveSpeakerObserverOptions) throws(SFUError) -> ActiveSpeakerObserver {
        let interval = options.interval ?? 300
        guard interval >= 100 else { throw .invalidArgument("invalid interval \(interval) (at least 100 ms)") }
        guard let handle = worker.forwarder.observerHandles.allocate() else { throw .failure("too many observers in this worker") }
        worker.forwarder.send(.addAudioLevelObserver(handle: handle, router: router.handle, intervalMs: UInt32(interval)))
        return ActiveSpeakerObserver(router: router, worker: worker, handle: handle, interval: interval, appData: options.appData ?? [:])
    }

    public var events: AsyncStream<ActiveSpeakerObserverEvent> { eventChannel.subscribe() }

    override func emitRouterClose() { eventChannel.emit(.routerClose) }
    override func finishChannels() {
        eventChannel.finish()
        super.finishChannels()
    }

    override func producerClosed(_ producer: Producer) {
        super.producerClosed(producer)
        scores[producer.id] = nil
        if dominantSpeaker === producer { dominantSpeaker = nil }
    }

    override func intervalEnded(_ samples: [AudioLevelSample]) {
        guard !closed, !paused else { return }
        for p in producers.values {
            let s = samples.first { $0.producer == p.handle }
            var speech = 0.0
            if let s, s.count > 0 {
                let meanLevel = Double(s.levelSum) / Double(s.count) // -dBov
                speech = max(0, Self.speechFloor - meanLevel)
            }
            scores[p.id] = 0.5 * (scores[p.id] ?? 0) + 0.5 * speech
        }
        guard let (leaderId, leaderScore) = scores.max(by: { $0.value < $1.value }), leaderScore > 0,
              let leader = producers[leaderId] else { return }
        let currentScore = dominantSpeaker.flatMap { scores[$0.id] } ?? 0
        silentIntervals = currentScore < 1 ? silentIntervals + 1 : 0
        let takesOver = dominantSpeaker == nil || leaderScore > currentScore * 1.2 || silentIntervals >= 2
        guard takesOver, dominantSpeaker !== leader else { return }
        dominantSpeaker = leader
        silentIntervals = 0
        eventChannel.emit(.dominantSpeaker(leader))
        worker?.notify("rtpobserver.dominantspeaker", id, ["producerId": .string(leader.id)], idKey: "rtpObserverId")
    }
}
