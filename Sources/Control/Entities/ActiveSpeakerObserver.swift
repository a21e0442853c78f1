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

/// Tells which audio producer is the dominant speaker with mediasoup's
/// algorithm: "Dominant Speaker Identification for Multipoint
/// Videoconferencing" (Volfin and Cohen), fed with RFC 6464 audio levels.
///
/// Each speaker keeps the last second of levels (50 samples of 20 ms),
/// quantized into 13 steps above its adaptive noise floor; speech activity
/// is scored over three time scales (immediate: the newest sample; medium:
/// active samples among the last 5; long: active mediums among the last 10)
/// with the paper's binomial-Poisson score. A challenger replaces the
/// dominant speaker only when the log ratios of its scores to the dominant
/// one's exceed 3, 2 and 0 on the three scales. The forwarder sums levels
/// per interval; each interval becomes as many 20 ms samples as it spans.
@RingSFUActor
public final class ActiveSpeakerObserver: RtpObserver {
    public nonisolated let interval: Int
    public private(set) var dominantSpeaker: Producer?
    private var speakers: [String: SpeakerActivity] = [:]
    private let eventChannel = EventChannel<ActiveSpeakerObserverEvent>()
    /// Emits on `events` and to the worker's notification taps.
    func publish(_ event: ActiveSpeakerObserverEvent) {
        eventChannel.emit(event)
        worker?.published(.activeSpeakerObserver(id, event))
    }

    init(router: Router, worker: Worker, handle: Handle, interval: Int, appData: AppData) {
        self.interval = interval
        super.init(router: router, worker: worker, handle: handle, appData: appData)
    }

    static func make(router: Router, worker: Worker, options: ActiveSpeakerObserverOptions) throws(SFUError) -> ActiveSpeakerObserver {
        let interval = options.interval ?? 300
        guard interval >= 100 else { throw .invalidArgument("invalid interval \(interval) (at least 100 ms)") }
        guard let handle = worker.forwarder.observerHandles.allocate() else { throw .failure("too many observers in this worker") }
        worker.forwarder.send(.addAudioLevelObserver(handle: handle, router: router.handle, intervalMs: UInt32(min(interval, 5000))))
        return ActiveSpeakerObserver(router: router, worker: worker, handle: handle, interval: min(interval, 5000), appData: options.appData ?? [:])
    }

    public var events: AsyncStream<ActiveSpeakerObserverEvent> { eventChannel.subscribe() }

    override func emitRouterClose() { publish(.routerClose) }
    override func finishChannels() {
        eventChannel.finish()
        super.finishChannels()
    }

    override func producerClosed(_ producer: Producer) {
        super.producerClosed(producer)
        speakers[producer.id] = nil
        if dominantSpeaker === producer {
            dominantSpeaker = nil
            chooseDominant()
        }
    }

    override func intervalEnded(_ samples: [AudioLevelSample]) {
        guard !closed, !paused else { return }
        for p in producers.values {
            var speaker = speakers[p.id] ?? SpeakerActivity()
            let spanned = max(1, interval / 20)
            if let s = samples.first(where: { $0.producer == p.handle }), s.count > 0 {
                // RFC 6464 levels are -dBov (127: silence); the algorithm takes volumes.
                let volume = 127 - Int((Double(s.levelSum) / Double(s.count)).rounded())
                speaker.record(volume: volume, samples: max(Int(s.count), spanned))
            } else {
                speaker.record(volume: 0, samples: spanned) // idle: silence
            }
            speakers[p.id] = speaker
        }
        chooseDominant()
    }

    /// mediasoup's choice: the only speaker; else a challenger whose scores
    /// beat the dominant one's on all three scales (the best medium-scale
    /// ratio wins); the first speaker stands in when there is no dominant.
    private func chooseDominant() {
        let ordered = producers.values.filter { speakers[$0.id] != nil }
        guard !ordered.isEmpty else { return }
        var chosen: Producer? = nil
        if ordered.count == 1 {
            chosen = ordered[0]
        } else {
            let current = dominantSpeaker.flatMap { d in ordered.first { $0 === d } } ?? ordered[0]
            if dominantSpeaker == nil || dominantSpeaker !== current { chosen = current }
            speakers[current.id]!.evaluate()
            let reference = speakers[current.id]!.scores
            var best = SpeakerActivity.thresholds[1]
            for p in ordered where p !== current && !p.paused {
                speakers[p.id]!.evaluate()
                let scores = speakers[p.id]!.scores
                let ratios = (0..<3).map { log(scores[$0] / reference[$0]) }
                if ratios[0] > SpeakerActivity.thresholds[0], ratios[1] > SpeakerActivity.thresholds[1],
                   ratios[2] > SpeakerActivity.thresholds[2], ratios[1] > best {
                    best = ratios[1]
                    chosen = p
                }
            }
        }
        guard let chosen, chosen !== dominantSpeaker else { return }
        dominantSpeaker = chosen
        publish(.dominantSpeaker(chosen))
    }
}

/// One speaker's state in the dominant speaker identification.
struct SpeakerActivity {
    /// Subunits of the immediate, medium and long scales, and the log-ratio
    /// thresholds a challenger must exceed on each.
    static let n1 = 13, n2 = 5, n3 = 10
    static let thresholds: [Double] = [3, 2, 0]
    static let levelCount = n3 * n2
    static let subunit = (127 + n1 - 1) / n1
    static let mediumThreshold = 7, longThreshold = 4
    /// Samples (20 ms each) before the noise floor is re-estimated: 15 s.
    static let minLevelWindow = 15 * 1000 / 20
    static let minScore = 1e-10

    var levels = [Int](repeating: 0, count: levelCount)
    var next = 0
    var minLevel = 0, nextMinLevel = 0, nextMinLevelWindow = 0
    var immediates = [Int](repeating: 0, count: levelCount)
    var mediums = [Int](repeating: 0, count: n3)
    var longs = [Int](repeating: 0, count: 1)
    var scores: [Double] = [minScore, minScore, minScore]

    /// `samples` 20 ms samples at `volume` (0 silence ... 127 loudest).
    mutating func record(volume: Int, samples: Int) {
        let v = max(0, min(127, volume))
        for _ in 0..<min(samples, Self.levelCount) {
            levels[next] = v
            next = (next + 1) % Self.levelCount
        }
        for _ in 0..<min(samples, Self.levelCount) { updateMinLevel(v) }
    }

    /// The adaptive noise floor: the lowest non-zero level, re-estimated
    /// every 15 s as the geometric mean of the old floor and the window's minimum.
    mutating func updateMinLevel(_ level: Int) {
        guard level != 0 else { return }
        if minLevel == 0 || minLevel > level {
            minLevel = level
            nextMinLevel = 0
            nextMinLevelWindow = 0
        } else if nextMinLevel == 0 {
            nextMinLevel = level
            nextMinLevelWindow = 1
        } else {
            nextMinLevel = min(nextMinLevel, level)
            nextMinLevelWindow += 1
            if nextMinLevelWindow >= Self.minLevelWindow {
                minLevel = max(0, min(127, Int(Double(minLevel * nextMinLevel).squareRoot())))
                nextMinLevel = 0
                nextMinLevelWindow = 0
            }
        }
    }

    /// Recomputes the three scales (each only if the one below changed).
    mutating func evaluate() {
        guard computeImmediates() else { return }
        scores[0] = Self.score(immediates[0], Self.n1, lambda: 0.78)
        guard Self.bigs(immediates, &mediums, threshold: Self.mediumThreshold) else { return }
        scores[1] = Self.score(mediums[0], Self.n2, lambda: 24)
        guard Self.bigs(mediums, &longs, threshold: Self.longThreshold) else { return }
        scores[2] = Self.score(longs[0], Self.n3, lambda: 47)
    }

    /// Newest first: each sample above the floor (plus one subunit) in subunits.
    mutating func computeImmediates() -> Bool {
        let floor = minLevel + Self.subunit
        var changed = false
        for i in 0..<Self.levelCount {
            var level = levels[(next - 1 - i + 2 * Self.levelCount) % Self.levelCount]
            if level < floor { level = 0 }
            let immediate = level / Self.subunit
            if immediates[i] != immediate {
                immediates[i] = immediate
                changed = true
            }
        }
        return changed
    }

    /// Each big counts the littles of its share above the threshold.
    static func bigs(_ littles: [Int], _ bigs: inout [Int], threshold: Int) -> Bool {
        let per = littles.count / bigs.count
        var changed = false
        for b in 0..<bigs.count {
            let sum = littles[(b * per)..<((b + 1) * per)].count { $0 > threshold }
            if bigs[b] != sum {
                bigs[b] = sum
                changed = true
            }
        }
        return changed
    }

    /// The paper's speech activity score for `active` of `total` subunits:
    /// log of a binomial term (p = 1/2) over an exponential prior (lambda).
    static func score(_ active: Int, _ total: Int, lambda: Double) -> Double {
        let value = log(binomial(total, active)) + Double(active) * log(0.5) + Double(total - active) * log(0.5)
            - log(lambda) + lambda * Double(active)
        return max(value, minScore)
    }

    static func binomial(_ n: Int, _ k: Int) -> Double {
        guard k >= 0, k <= n else { return 1 }
        var r = 1.0
        for i in 0..<min(k, n - k) { r = r * Double(n - i) / Double(i + 1) }
        return r
    }
}
