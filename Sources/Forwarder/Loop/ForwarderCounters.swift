/// Per-worker packet counters. Plain integers owned by the forwarder thread;
/// the control plane reads a copy through a command, never the live values.
package struct ForwarderCounters: Sendable, Equatable, Codable {
    package var packetsIn: UInt64 = 0
    package var bytesIn: UInt64 = 0
    package var packetsOut: UInt64 = 0
    package var bytesOut: UInt64 = 0
    package var rtcpIn: UInt64 = 0
    package var rtcpOut: UInt64 = 0
    /// Packets resent in answer to NACKs (included in packetsOut).
    package var retransmitted: UInt64 = 0
    /// Padding packets sent to probe for bandwidth (included in packetsOut).
    package var probePackets: UInt64 = 0
    /// Sender and receiver reports sent.
    package var senderReports: UInt64 = 0
    package var receiverReports: UInt64 = 0
    package var sendCalls: UInt64 = 0
    package var dropMalformed: UInt64 = 0
    package var dropUnknownSsrc: UInt64 = 0
    package var dropUnknownSource: UInt64 = 0
    package var dropNotRtp: UInt64 = 0
    package var dropRecvPoolEmpty: UInt64 = 0
    /// Datagrams the kernel dropped because a socket's queue overflowed
    /// (the loop fell behind), reported through SO_RXQ_OVFL.
    package var dropSocketOverflow: UInt64 = 0
    /// SCTP packets dropped because the control layer had too many waiting.
    package var dropSctpBacklog: UInt64 = 0
    package var dropSendPoolEmpty: UInt64 = 0
    package var dropSendError: UInt64 = 0
    package var dropTruncated: UInt64 = 0
    /// STUN messages dropped (unknown ufrag, bad integrity or fingerprint, not a request).
    package var dropStun: UInt64 = 0
    /// Media or DTLS before ICE/DTLS allow it, or from another tuple.
    package var dropNotReady: UInt64 = 0
    /// SRTP/SRTCP packets that failed authentication, or were replays.
    package var dropSrtpAuth: UInt64 = 0
    package var dropSrtpReplay: UInt64 = 0
    package var dropSrtpOther: UInt64 = 0
    /// Packets not sent because the transport's SRTP keys are missing or
    /// were refused (SRTP fails closed: no plain RTP instead).
    package var dropSrtpUnavailable: UInt64 = 0
    /// Packets dropped because a pipe ring to another worker was full.
    package var dropPipeFull: UInt64 = 0
    /// ICE-TCP connections accepted, closed, and refused (table full).
    package var tcpAccepted: UInt64 = 0
    package var tcpClosed: UInt64 = 0
    package var tcpRefused: UInt64 = 0
    /// ICE-TCP connections closed for passing no STUN check in time.
    package var tcpReaped: UInt64 = 0
    /// Frames larger than a packet buffer (the connection is closed).
    package var dropTcpFrame: UInt64 = 0
    /// Packets dropped because a connection's send ring was full.
    package var dropTcpBackpressure: UInt64 = 0
    /// RTCP compound packets that failed to parse.
    package var dropRtcpMalformed: UInt64 = 0
    /// Transport-wide CC feedback and estimate REMB packets sent, and
    /// transports left without feedback (every recorder taken).
    package var transportCcFeedback: UInt64 = 0
    package var rembSent: UInt64 = 0
    package var dropTransportCcUnavailable: UInt64 = 0
    package var loopTurns: UInt64 = 0
    package var recvRearms: UInt64 = 0

    package init() {}
}

/// Figures of one forwarder entity (transport, producer or consumer).
package struct EntityCounters: Sendable, Equatable {
    package var packets: UInt64 = 0
    package var bytes: UInt64 = 0
    package var packetsOut: UInt64 = 0
    package var bytesOut: UInt64 = 0
    package var dropped: UInt64 = 0
    /// RTCP feedback: received from a consumer's endpoint, or sent to a
    /// producer's endpoint (PLI, FIR, NACK).
    package var pli: UInt64 = 0
    package var fir: UInt64 = 0
    package var nack: UInt64 = 0
    package var keyFrames: UInt64 = 0
    /// Packets asked for in NACKs sent to a producer's endpoint.
    package var nackedPackets: UInt64 = 0
    /// Transports: the send-side estimate (bps; 0 while none).
    package var availableOutgoingBitrate: UInt64 = 0
    /// Packets resent in answer to NACKs, and NACKed packets no longer held.
    package var retransmitted: UInt64 = 0
    package var retransmissionMisses: UInt64 = 0
    /// Reception figures (producers: measured here; consumers: from the
    /// endpoint's receiver reports), score 0-10, RTT, bitrate over the
    /// last report interval.
    package var packetsLost: Int64 = 0
    package var fractionLost: UInt8 = 0
    package var jitter: UInt32 = 0
    package var packetsRepaired: UInt64 = 0
    package var score: UInt8 = 10
    package var roundTripTimeMs: Double = 0
    package var bitrate: UInt64 = 0
    /// Transports: bits per second sent over the last report interval.
    package var sendBitrate: UInt64 = 0
    /// Producer layers: the stream's SSRC (0 until known).
    package var ssrc: UInt32 = 0
    package var rtcpPackets: UInt64 = 0
    package init() {}
}

/// Resource figures, for dumps and for tests that check nothing leaked.
package struct ForwarderResources: Sendable, Equatable {
    package var routers = 0
    package var transports = 0
    package var producers = 0
    package var consumers = 0
    package var sockets = 0
    package var tcpConnections = 0
    package var ssrcEntries = 0
    package var freeSendSlots = 0
    package var sendSlots = 0
    package var freeMessages = 0
    package var messages = 0
    package var timers = 0
    package init() {}
}
