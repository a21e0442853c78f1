/// How busy a worker's forwarder is, from its figures sampled now and then:
/// the forwarder thread's share of a core and the packets it sends per
/// second, each smoothed over the last few samples. A pure value: time
/// comes in as a parameter, so placement decisions are tested on
/// simulated time.
public struct WorkerLoad: Sendable, Equatable {
    /// Packets a second one forwarder sends near saturation on one core of
    /// the reference machine (about 3 CPU-seconds per million packets at
    /// fan-out; perf/RESULTS.md): turns a packet rate into a share of a core
    /// when the CPU figure lags (a room that just started).
    public static let packetsPerCore = 300_000.0
    /// Weight of a new sample (the rest is the history's).
    static let smoothing = 0.5

    /// The forwarder thread's share of one core (0...1, smoothed).
    public private(set) var cpu = 0.0
    /// Packets sent per second (smoothed).
    public private(set) var packetsPerSecond = 0.0
    private var lastNs: Int64 = -1
    private var lastPackets: UInt64 = 0
    private var lastCpuSeconds = 0.0

    public init() {}

    /// A sample of the worker's running totals: packets sent and the
    /// forwarder thread's CPU seconds. The first only sets the baseline.
    public mutating func sample(nowNs: Int64, packetsOut: UInt64, cpuSeconds: Double) {
        defer { lastNs = nowNs; lastPackets = packetsOut; lastCpuSeconds = cpuSeconds }
        guard lastNs >= 0, nowNs > lastNs else { return }
        let seconds = Double(nowNs - lastNs) / 1e9
        let share = min(1, max(0, cpuSeconds - lastCpuSeconds) / seconds)
        let rate = Double(packetsOut >= lastPackets ? packetsOut - lastPackets : 0) / seconds
        cpu += (share - cpu) * Self.smoothing
        packetsPerSecond += (rate - packetsPerSecond) * Self.smoothing
    }

    /// The load a placement compares: the larger of the CPU share and the
    /// packet rate as a share of what a core carries.
    public var score: Double { max(cpu, packetsPerSecond / Self.packetsPerCore) }

    /// Whether it is at least `threshold` busy (a new room or viewer goes
    /// elsewhere if it can).
    public func busy(_ threshold: Double) -> Bool { score >= threshold }
}
