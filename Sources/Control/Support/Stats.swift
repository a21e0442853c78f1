/// Statistics entries in mediasoup's shapes (`getStats()` returns arrays of
/// these). Fields that do not apply are nil and left out of the JSON.
public struct RtpStreamStats: Codable, Sendable, Hashable {
    public var type: String
    public var timestamp: Double
    public var ssrc: UInt32
    /// Inbound streams of a simulcast producer: the encoding's RID, if any.
    public var rid: String? = nil
    public var kind: MediaKind
    public var mimeType: String
    public var packetCount: UInt64
    public var byteCount: UInt64
    public var packetsDiscarded: UInt64
    public var score: Int
    /// Feedback counts, as mediasoup names them: for an inbound stream the
    /// requests sent to the endpoint, for an outbound one those received.
    public var nackCount: UInt64 = 0
    public var pliCount: UInt64 = 0
    public var firCount: UInt64 = 0
    /// Outbound: packets resent in answer to NACKs.
    public var packetsRetransmitted: UInt64 = 0
    /// Outbound: NACKed packets that could not be resent (no longer in the
    /// worker's retransmission store, too old, or sent under an earlier
    /// numbering). Not a mediasoup field.
    public var retransmissionMisses: UInt64 = 0
    /// Inbound: measured here; outbound: as the endpoint's reports say.
    public var packetsLost: Int64 = 0
    public var fractionLost: Int = 0
    /// Interarrival jitter in RTP timestamp units.
    public var jitter: UInt32 = 0
    /// Inbound: packets recovered by RTX or that arrived late; NACKed packets.
    public var packetsRepaired: UInt64 = 0
    public var nackPacketCount: UInt64 = 0
    /// Outbound: from our SR to the endpoint's RR, in milliseconds.
    public var roundTripTime: Double? = nil
    /// Bits per second over the last report interval.
    public var bitrate: UInt64 = 0
}

public struct TransportStats: Codable, Sendable, Hashable {
    public var type: String
    public var transportId: String
    public var timestamp: Double
    public var bytesReceived: UInt64
    public var bytesSent: UInt64
    public var rtpPacketsReceived: UInt64
    public var rtpPacketsSent: UInt64
    public var tuple: TransportTuple?
    public var rtcpTuple: TransportTuple?
    public var comedia: Bool?
    public var rtcpMux: Bool?
    /// Bits per second over the last report interval.
    public var recvBitrate: UInt64 = 0
    public var sendBitrate: UInt64 = 0
    public var rtcpPacketsReceived: UInt64 = 0
    /// Limits set with `setMaxIncomingBitrate` and friends (nil: none).
    public var maxIncomingBitrate: Int? = nil
    public var maxOutgoingBitrate: Int? = nil
    public var minOutgoingBitrate: Int? = nil
    /// WebRtcTransport whose endpoint sends transport-wide feedback: the
    /// send-side estimate of what it can receive (bps).
    public var availableOutgoingBitrate: Int? = nil
    /// WebRtcTransport only.
    public var iceRole: String? = nil
    public var iceState: IceState? = nil
    public var iceSelectedTuple: TransportTuple? = nil
    public var dtlsState: DtlsState? = nil
    public var sctpState: String? = nil
}

/// Figures of a whole worker: the forwarder's counters and its resources.
public struct WorkerResourceUsage: Codable, Sendable, Hashable {
    public var packetsIn: UInt64
    public var bytesIn: UInt64
    public var packetsOut: UInt64
    public var bytesOut: UInt64
    public var rtcpIn: UInt64
    /// RTCP packets sent, and packets resent in answer to NACKs (included in packetsOut).
    public var rtcpOut: UInt64 = 0
    public var retransmitted: UInt64 = 0
    public var sendCalls: UInt64
    public var dropMalformed: UInt64
    public var dropUnknownSsrc: UInt64
    public var dropUnknownSource: UInt64
    public var dropNotRtp: UInt64
    public var dropRecvPoolEmpty: UInt64
    /// Datagrams the kernel dropped because the worker fell behind.
    public var dropSocketOverflow: UInt64
    /// SCTP packets dropped because too many were waiting for the control layer.
    public var dropSctpBacklog: UInt64 = 0
    /// Congestion feedback sent to publishers: transport-wide CC packets and
    /// estimate REMBs; transports left without transport-wide CC feedback.
    public var transportCcFeedback: UInt64 = 0
    public var rembSent: UInt64 = 0
    /// Padding packets sent to probe consumers' links for bandwidth (in `packetsOut`).
    public var probePackets: UInt64 = 0
    public var transportCcUnavailable: UInt64 = 0
    /// ICE-TCP connections closed for passing no STUN check in time.
    public var tcpReaped: UInt64 = 0
    /// Packets not sent for want of SRTP keys (SRTP fails closed).
    public var dropSrtpUnavailable: UInt64 = 0
    public var dropSendPoolEmpty: UInt64
    public var dropSendError: UInt64
    public var dropTruncated: UInt64
    /// STUN dropped (unknown ufrag, bad integrity); media/DTLS before ICE/DTLS allow it.
    public var dropStun: UInt64
    public var dropNotReady: UInt64
    /// SRTP/SRTCP packets that failed authentication, replays, other SRTP errors.
    public var dropSrtpAuth: UInt64
    public var dropSrtpReplay: UInt64
    public var dropSrtpOther: UInt64
    /// Packets dropped because an in-process pipe ring was full.
    public var dropPipeFull: UInt64
    /// ICE-TCP connections accepted, closed and refused (table full);
    /// oversized frames; packets dropped on a full connection send ring.
    public var tcpAccepted: UInt64
    public var tcpClosed: UInt64
    public var tcpRefused: UInt64
    public var dropTcpFrame: UInt64
    public var dropTcpBackpressure: UInt64
    public var routers: Int
    public var transports: Int
    public var producers: Int
    public var consumers: Int
    public var sockets: Int
    public var tcpConnections: Int
    public var ssrcEntries: Int
    public var freeSendSlots: Int
    public var sendSlots: Int
    /// Thread CPU time of the forwarder, in seconds.
    public var forwarderCpuSeconds: Double
    /// mediasoup's `getResourceUsage()` fields (getrusage, times in
    /// milliseconds), for the worker's forwarder thread: a worker is a
    /// thread here, not a process, so `ru_maxrss` is the whole process's.
    public var ru_utime: Double = 0
    public var ru_stime: Double = 0
    public var ru_maxrss: Int = 0
    public var ru_ixrss: Int = 0
    public var ru_idrss: Int = 0
    public var ru_isrss: Int = 0
    public var ru_minflt: Int = 0
    public var ru_majflt: Int = 0
    public var ru_nswap: Int = 0
    public var ru_inblock: Int = 0
    public var ru_oublock: Int = 0
    public var ru_msgsnd: Int = 0
    public var ru_msgrcv: Int = 0
    public var ru_nsignals: Int = 0
    public var ru_nvcsw: Int = 0
    public var ru_nivcsw: Int = 0
}

func nowMillis() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1_000_000
}

#if canImport(Glibc)
import Glibc
#endif
