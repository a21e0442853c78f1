import Foundation
import CoreMetrics
import Logging
import RingSFUCShims
import RingSFUForwarder

/// A worker's figures: resource usage (forwarder counters and the thread's
/// getrusage) and their export through swift-metrics.
extension Worker {
    /// Publishes the worker's current figures through swift-metrics (the
    /// factory bootstrapped in `MetricsSystem`, or the one given): counters
    /// of packets, bytes, RTCP and drops by reason, resource gauges, the
    /// forwarder thread's CPU time, and per-transport packet and byte
    /// counters. Call it on a schedule, or before each scrape.
    public func publishMetrics(factory: (any MetricsFactory)? = nil) async {
        guard !closed else { return }
        let (c, r) = await forwarder.counters()
        let figures = await forwarder.transportFigures()
        guard !closed else { return }
        let exporter = metrics ?? WorkerMetrics(workerId: id, factory: factory ?? MetricsSystem.factory)
        metrics = exporter
        let transports = figures.compactMap { handle, f -> (id: String, type: String, figures: EntityCounters)? in
            guard let t = registry.transportsByHandle[handle] else { return nil }
            return (t.id, t.statsType, f)
        }
        exporter.update(c, r, cpuSeconds: forwarderCpuSeconds, transports: transports)
    }

    public func getResourceUsage() async -> WorkerResourceUsage {
        let (c, r) = await forwarder.counters()
        var usage = Self.usage(c, r, cpuSeconds: forwarderCpuSeconds)
        if let ru = await forwarder.threadUsage() {
            func ms(_ t: timeval) -> Double { Double(t.tv_sec) * 1000 + Double(t.tv_usec) / 1000 }
            usage.ru_utime = ms(ru.ru_utime)
            usage.ru_stime = ms(ru.ru_stime)
            usage.ru_maxrss = ru.ru_maxrss
            usage.ru_ixrss = ru.ru_ixrss
            usage.ru_idrss = ru.ru_idrss
            usage.ru_isrss = ru.ru_isrss
            usage.ru_minflt = ru.ru_minflt
            usage.ru_majflt = ru.ru_majflt
            usage.ru_nswap = ru.ru_nswap
            usage.ru_inblock = ru.ru_inblock
            usage.ru_oublock = ru.ru_oublock
            usage.ru_msgsnd = ru.ru_msgsnd
            usage.ru_msgrcv = ru.ru_msgrcv
            usage.ru_nsignals = ru.ru_nsignals
            usage.ru_nvcsw = ru.ru_nvcsw
            usage.ru_nivcsw = ru.ru_nivcsw
        }
        return usage
    }

    static func usage(_ c: ForwarderCounters, _ r: ForwarderResources, cpuSeconds: Double) -> WorkerResourceUsage {
        var usage = WorkerResourceUsage(
            packetsIn: c.packetsIn, bytesIn: c.bytesIn, packetsOut: c.packetsOut, bytesOut: c.bytesOut,
            rtcpIn: c.rtcpIn, rtcpOut: c.rtcpOut, retransmitted: c.retransmitted, sendCalls: c.sendCalls, dropMalformed: c.dropMalformed, dropUnknownSsrc: c.dropUnknownSsrc,
            dropUnknownSource: c.dropUnknownSource, dropNotRtp: c.dropNotRtp, dropRecvPoolEmpty: c.dropRecvPoolEmpty, dropSocketOverflow: c.dropSocketOverflow,
            dropSendPoolEmpty: c.dropSendPoolEmpty, dropSendError: c.dropSendError, dropTruncated: c.dropTruncated, dropStun: c.dropStun, dropNotReady: c.dropNotReady, dropSrtpAuth: c.dropSrtpAuth, dropSrtpReplay: c.dropSrtpReplay, dropSrtpOther: c.dropSrtpOther, dropPipeFull: c.dropPipeFull,
            tcpAccepted: c.tcpAccepted, tcpClosed: c.tcpClosed, tcpRefused: c.tcpRefused, dropTcpFrame: c.dropTcpFrame, dropTcpBackpressure: c.dropTcpBackpressure,
            routers: r.routers, transports: r.transports, producers: r.producers, consumers: r.consumers,
            sockets: r.sockets, tcpConnections: r.tcpConnections, ssrcEntries: r.ssrcEntries, freeSendSlots: r.freeSendSlots, sendSlots: r.sendSlots,
            forwarderCpuSeconds: cpuSeconds)
        usage.dropSctpBacklog = c.dropSctpBacklog
        usage.transportCcFeedback = c.transportCcFeedback
        usage.rembSent = c.rembSent
        usage.probePackets = c.probePackets
        usage.transportCcUnavailable = c.dropTransportCcUnavailable
        usage.tcpReaped = c.tcpReaped
        usage.dropSrtpUnavailable = c.dropSrtpUnavailable
        return usage
    }

    /// Packets sent so far and the forwarder thread's CPU seconds: what a
    /// `WorkerLoad` is sampled from.
    func loadFigures() async -> (packetsOut: UInt64, cpuSeconds: Double) {
        let (c, _) = await forwarder.counters()
        return (c.packetsOut, forwarderCpuSeconds)
    }

    /// CPU time of the forwarder thread so far (0 once it has ended).
    var forwarderCpuSeconds: Double {
        let tid = forwarder.threadId.load(ordering: .acquiring)
        let cpuNs = tid == 0 || forwarder.isFinished ? 0 : rsfu_thread_cpu_ns(pthread_t(tid))
        return Double(max(0, cpuNs)) / 1e9
    }

    /// The worker's forwarder thread id (for per-thread CPU accounting).
    package var forwarderThread: UInt { forwarder.threadId.load(ordering: .acquiring) }

    /// Routers, WebRTC servers, transports, producers and consumers hosted.
    public var entityCount: Int {
        routers.count + webRtcServers.count + registry.count
    }

    /// Waits until every command sent so far has been applied by the forwarder.
}
