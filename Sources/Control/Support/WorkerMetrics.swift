import CoreMetrics
import RingSFUForwarder

/// Publishes a worker's forwarder figures through swift-metrics: worker
/// counters (packets, bytes, RTCP, drops by reason), resource gauges, the
/// forwarder thread's CPU time, and per-transport packet and byte counters.
/// The forwarder keeps cumulative counts; each export adds what changed.
@RingSFUActor
final class WorkerMetrics {
    private let factory: any MetricsFactory
    private let workerId: String
    private var counters: [String: CoreMetrics.Counter] = [:]
    private var gauges: [String: Gauge] = [:]
    private var cpu: FloatingPointCounter?
    private var lastCpu = 0.0
    private var last: [String: UInt64] = [:]
    private var transportLast: [String: (labels: [(String, String)], values: [UInt64])] = [:]
    private var transportCounters: [String: [CoreMetrics.Counter]] = [:]

    init(workerId: String, factory: any MetricsFactory) {
        self.workerId = workerId
        self.factory = factory
    }

    /// Adds what a cumulative forwarder count gained since the last export
    /// to its counter (created on first use, so every series shows from the start).
    private func add(_ name: String, _ value: UInt64, _ extra: [(String, String)] = []) {
        let key = name + extra.map { "|\($0.0)=\($0.1)" }.joined()
        let counter = counters[key] ?? CoreMetrics.Counter(label: name, dimensions: [("worker", workerId)] + extra, factory: factory)
        counters[key] = counter
        let delta = value &- (last[key] ?? 0)
        last[key] = value
        if delta > 0 && delta < UInt64(Int64.max) { counter.increment(by: Int64(delta)) }
    }

    private func set(_ name: String, _ value: Int) {
        let g = gauges[name] ?? Gauge(label: name, dimensions: [("worker", workerId)], factory: factory)
        gauges[name] = g
        g.record(value)
    }

    func update(_ c: ForwarderCounters, _ r: ForwarderResources, cpuSeconds: Double, transports: [(id: String, type: String, figures: EntityCounters)]) {
        add("ringsfu_packets_received_total", c.packetsIn)
        add("ringsfu_bytes_received_total", c.bytesIn)
        add("ringsfu_packets_sent_total", c.packetsOut)
        add("ringsfu_bytes_sent_total", c.bytesOut)
        add("ringsfu_rtcp_received_total", c.rtcpIn)
        add("ringsfu_rtcp_sent_total", c.rtcpOut)
        add("ringsfu_send_calls_total", c.sendCalls)
        add("ringsfu_tcp_connections_accepted_total", c.tcpAccepted)
        add("ringsfu_tcp_connections_refused_total", c.tcpRefused)
        add("ringsfu_tcp_connections_reaped_total", c.tcpReaped)
        add("ringsfu_transport_cc_feedback_sent_total", c.transportCcFeedback)
        add("ringsfu_probe_packets_sent_total", c.probePackets)
        add("ringsfu_remb_estimates_sent_total", c.rembSent)
        add("ringsfu_transport_cc_unavailable_total", c.dropTransportCcUnavailable)
        let drops: [(String, UInt64)] = [
            ("malformed", c.dropMalformed), ("unknown_ssrc", c.dropUnknownSsrc), ("unknown_source", c.dropUnknownSource),
            ("not_rtp", c.dropNotRtp), ("receive_pool_empty", c.dropRecvPoolEmpty), ("socket_overflow", c.dropSocketOverflow), ("sctp_backlog", c.dropSctpBacklog),
            ("send_pool_empty", c.dropSendPoolEmpty), ("send_error", c.dropSendError), ("truncated", c.dropTruncated),
            ("stun", c.dropStun), ("not_ready", c.dropNotReady), ("srtp_auth", c.dropSrtpAuth), ("srtp_replay", c.dropSrtpReplay),
            ("srtp_other", c.dropSrtpOther), ("srtp_unavailable", c.dropSrtpUnavailable), ("pipe_full", c.dropPipeFull), ("tcp_frame", c.dropTcpFrame),
            ("tcp_backpressure", c.dropTcpBackpressure), ("rtcp_malformed", c.dropRtcpMalformed),
        ]
        for (reason, value) in drops { add("ringsfu_packets_dropped_total", value, [("reason", reason)]) }
        set("ringsfu_routers", r.routers)
        set("ringsfu_transports", r.transports)
        set("ringsfu_producers", r.producers)
        set("ringsfu_consumers", r.consumers)
        set("ringsfu_tcp_connections", r.tcpConnections)
        set("ringsfu_free_send_slots", r.freeSendSlots)
        let cpuCounter = cpu ?? FloatingPointCounter(label: "ringsfu_forwarder_cpu_seconds_total", dimensions: [("worker", workerId)], factory: factory)
        cpu = cpuCounter
        if cpuSeconds > lastCpu { cpuCounter.increment(by: cpuSeconds - lastCpu) }
        lastCpu = max(lastCpu, cpuSeconds)

        // Per transport; a closed transport's series are removed.
        var seen = Set<String>()
        for t in transports {
            seen.insert(t.id)
            let values = [t.figures.packets, t.figures.bytes, t.figures.packetsOut, t.figures.bytesOut, t.figures.rtcpPackets]
            let names = ["ringsfu_transport_packets_received_total", "ringsfu_transport_bytes_received_total",
                         "ringsfu_transport_packets_sent_total", "ringsfu_transport_bytes_sent_total", "ringsfu_transport_rtcp_received_total"]
            let labels = [("worker", workerId), ("transport", t.id), ("type", t.type)]
            let series = transportCounters[t.id] ?? names.map { CoreMetrics.Counter(label: $0, dimensions: labels, factory: factory) }
            transportCounters[t.id] = series
            let previous = transportLast[t.id]?.values ?? Array(repeating: 0, count: values.count)
            for i in values.indices where values[i] > previous[i] { series[i].increment(by: Int64(clamping: values[i] - previous[i])) }
            transportLast[t.id] = (labels, values)
        }
        for (id, series) in transportCounters where !seen.contains(id) {
            for c in series { c.destroy() }
            transportCounters[id] = nil
            transportLast[id] = nil
        }
    }

    /// Removes every series (the worker closed).
    func destroy() {
        for c in counters.values { c.destroy() }
        for g in gauges.values { g.destroy() }
        cpu?.destroy()
        for series in transportCounters.values { for c in series { c.destroy() } }
        counters = [:]
        gauges = [:]
        transportCounters = [:]
    }
}

/// Descriptions of the metrics RingSFU exports, for exposition formats that
/// carry them (Prometheus `# HELP`). swift-metrics has no place for help
/// text, so an exporter adds it to its output with `annotate`.
public enum RingSFUMetrics {
    public static let help: [String: String] = [
        "ringsfu_packets_received_total": "Datagrams (and ICE-TCP frames) received by the worker's forwarder.",
        "ringsfu_bytes_received_total": "Bytes received by the worker's forwarder.",
        "ringsfu_packets_sent_total": "Packets the worker's forwarder sent (media, RTCP, STUN, DTLS).",
        "ringsfu_bytes_sent_total": "Bytes the worker's forwarder sent.",
        "ringsfu_rtcp_received_total": "RTCP compound packets received.",
        "ringsfu_rtcp_sent_total": "RTCP packets sent (reports, feedback, key frame requests).",
        "ringsfu_send_calls_total": "Send operations submitted to the kernel (one may carry several packets with UDP GSO).",
        "ringsfu_packets_dropped_total": "Packets dropped by the forwarder, by reason.",
        "ringsfu_tcp_connections_accepted_total": "ICE-TCP connections accepted.",
        "ringsfu_tcp_connections_refused_total": "ICE-TCP connections closed at once: connection table full, or a listener's or a source address's cap of connections without a STUN check reached.",
        "ringsfu_tcp_connections_reaped_total": "ICE-TCP connections closed for sending no valid STUN check within the idle timeout.",
        "ringsfu_transport_cc_feedback_sent_total": "Transport-wide congestion control feedback packets sent to publishers.",
        "ringsfu_remb_estimates_sent_total": "REMB packets carrying a receive-side bandwidth estimate sent to publishers.",
        "ringsfu_transport_cc_unavailable_total": "Transports left without transport-wide CC feedback because every arrival recorder was taken.",
        "ringsfu_routers": "Routers hosted by the worker.",
        "ringsfu_transports": "Transports hosted by the worker.",
        "ringsfu_producers": "Producers hosted by the worker.",
        "ringsfu_consumers": "Consumers hosted by the worker.",
        "ringsfu_tcp_connections": "Open ICE-TCP connections.",
        "ringsfu_free_send_slots": "Free packet slots in the worker's send pool.",
        "ringsfu_forwarder_cpu_seconds_total": "CPU time used by the worker's forwarder thread.",
        "ringsfu_transport_packets_received_total": "Packets received on one transport.",
        "ringsfu_transport_bytes_received_total": "Bytes received on one transport.",
        "ringsfu_transport_packets_sent_total": "Packets sent on one transport.",
        "ringsfu_transport_bytes_sent_total": "Bytes sent on one transport.",
        "ringsfu_transport_rtcp_received_total": "RTCP packets received on one transport.",
    ]

    /// Adds a `# HELP` line before each `# TYPE` line of a Prometheus text
    /// exposition that has none: from `help` and `extra`, else a generic
    /// one naming the metric (every family then has help text).
    public static func annotate(_ exposition: String, extra: [String: String] = [:]) -> String {
        var out = ""
        out.reserveCapacity(exposition.utf8.count + 4096)
        var described = Set<Substring>()
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# HELP ") {
                if let name = line.dropFirst(7).split(separator: " ").first { described.insert(name) }
            } else if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, !described.contains(name) {
                let text = help[String(name)] ?? extra[String(name)] ?? "\(name.replacingOccurrences(of: "_", with: " ")) (no description)"
                out += "# HELP \(name) \(text)\n"
                described.insert(name)
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        return out
    }
}
