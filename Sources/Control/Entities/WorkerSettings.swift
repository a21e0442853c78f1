/// Settings of a worker, with mediasoup's field names where they exist.
public struct WorkerSettings: Codable, Sendable, Hashable {
    /// mediasoup's levels (`debug`, `warn`, `error`, `none`) or swift-log's
    /// (`trace` ... `critical`). Default: none of the library's own; the
    /// embedding application's swift-log setup (its handler's level) decides.
    public var logLevel: String?
    /// Lowest and highest UDP port for transports that pick their own port.
    public var rtcMinPort: Int?
    public var rtcMaxPort: Int?
    /// CPU to pin the forwarder thread to.
    public var cpu: Int?
    /// Gather each consumer's packets of a loop turn into UDP GSO sends.
    public var gso: Bool?
    /// Microseconds the forwarder may let completions gather before a loop
    /// turn (0: never; default 300). Only while packets arrive at least
    /// once per that window on average; after a quiet spell the first
    /// packet is taken at once. A turn then carries several packets (fewer
    /// wakeups, more for GSO to merge), each delayed at most this long:
    /// 13-33 % less CPU per packet at 10k-100k packets/s with up to ten
    /// consumers per packet, p99 forwarding latency under 0.7 ms
    /// (perf/RESULTS.md). Needs Linux 6.12 (io_uring's minimum wait);
    /// ignored before.
    public var coalesceMicroseconds: Int?
    /// Upper bounds of the preallocated tables.
    public var maxTransports: Int?
    public var maxProducers: Int?
    public var maxConsumers: Int?
    /// Receive buffers in the forwarder's provided-buffer ring (rounded up
    /// to a power of two; default 4096).
    public var receiveBuffers: Int?
    /// Packets kept for answering NACKs, shared by all the worker's
    /// producers (default 32768, each in a 2 KiB preallocated slot). A
    /// packet can be resent while it is among the most recent this many
    /// (and no older than `retransmissionMaxAgeMs`): size it to twice the
    /// worker's incoming video packets per second.
    public var retransmissionBufferPackets: Int?
    /// How long after its arrival a video packet may still be resent
    /// (default 2000 ms, as mediasoup; audio gets half). A repair older than
    /// that reaches a receiver whose jitter buffer has given up on it; raise
    /// it only for receivers on links with round trips near a second.
    public var retransmissionMaxAgeMs: Int?
    public var appData: AppData?
    /// ICE consent timeout in milliseconds (RFC 7675: 30000; lower only for tests).
    public var iceConsentTimeoutMs: Int?
    /// ICE-TCP: connections the worker holds at once (default 128), the time
    /// an accepted connection has to pass a valid STUN check before it is
    /// closed (default 10000 ms), and how many connections without one a
    /// single listener or a single source address may hold (defaults 32 and
    /// 16); connections beyond the caps are refused.
    public var maxTcpConnections: Int?
    public var tcpIdleTimeoutMs: Int?
    public var maxPendingTcpPerListener: Int?
    public var maxPendingTcpPerSource: Int?
    /// PEM files of the DTLS certificate and its private key (both or
    /// neither), so the fingerprint stays the same across restarts and
    /// workers; without them each worker makes a self-signed ECDSA P-256 one.
    public var dtlsCertificateFile: String?
    public var dtlsPrivateKeyFile: String?

    public init(logLevel: String? = nil, rtcMinPort: Int? = nil, rtcMaxPort: Int? = nil, cpu: Int? = nil, gso: Bool? = nil, maxTransports: Int? = nil, maxProducers: Int? = nil, maxConsumers: Int? = nil, receiveBuffers: Int? = nil, retransmissionBufferPackets: Int? = nil, appData: AppData? = nil) {
        self.receiveBuffers = receiveBuffers
        self.retransmissionBufferPackets = retransmissionBufferPackets
        self.logLevel = logLevel
        self.rtcMinPort = rtcMinPort
        self.rtcMaxPort = rtcMaxPort
        self.cpu = cpu
        self.gso = gso
        self.maxTransports = maxTransports
        self.maxProducers = maxProducers
        self.maxConsumers = maxConsumers
        self.appData = appData
    }
}
