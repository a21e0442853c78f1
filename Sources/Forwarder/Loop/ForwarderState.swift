import RingSFUCShims

/// Per-entity data-plane state. These live in preallocated tables indexed
/// by handle; lists between entities are intrusive (index links), so adding
/// and removing never allocates.

package struct RouterState {
    var inUse = false
    var firstTransport: Int32 = -1
}

package struct SocketState {
    var inUse = false
    var fd: Int32 = -1
    var transport: UInt32 = 0
    var isRtcp = false
    var closing = false
    var armed = false
    /// A WebRTC server's socket (datagrams demultiplexed by ufrag, then tuple).
    var server: Int32 = -1
    /// Last cumulative kernel drop count seen on this socket.
    var kernelDrops: UInt32 = 0
    var kind = SocketKind.udp
    /// A TCP connection's slot in the loop's connection table.
    var conn: Int32 = -1
    /// A TCP connection known to belong to `transport` (always for a
    /// transport's own listener; after a valid STUN check on a server's).
    var bound = false
}

package enum SocketKind: UInt8 {
    case udp, tcpListener, tcpConnection
}

/// One ICE-TCP connection (RFC 6544 passive, RFC 4571 framing). Its
/// receive buffer (frame reassembly) and send ring live in preallocated
/// slabs at the connection's index.
package struct TcpConnState {
    var inUse = false
    var socket: Int32 = -1
    var peer = SocketAddress()
    /// Bytes waiting in the receive buffer (an incomplete frame).
    var received = 0
    /// Send ring positions (monotonic byte counts) and the bytes of the one
    /// send in flight (0: none). One send at a time keeps the stream ordered.
    var head = 0
    var tail = 0
    var sending = 0
    var queued = false
    /// When it was accepted: a connection that has not passed a valid
    /// STUN check (`verified`) within the idle timeout is closed, whatever
    /// listener took it.
    var acceptedNs: Int64 = 0
    var verified = false
    /// The listener socket that accepted it, and a hash of the peer's
    /// address without its port (per-listener and per-source caps).
    var listener: Int32 = -1
    var sourceKey: UInt32 = 0
}

package struct TransportState {
    var inUse = false
    /// The entity holding this row (events carry it back).
    var handle = Handle.none
    var router: UInt32 = 0
    var rtpSocket: Int32 = -1
    var rtcpSocket: Int32 = -1
    var comedia = false
    /// No sockets: packets come from and go to the application.
    var direct = false
    /// The WebRTC server whose socket this transport shares (-1: its own).
    var server: Int32 = -1
    /// The socket media goes out on: the RTP socket, or for WebRTC the
    /// socket (UDP or TCP connection) of the tuple ICE selected.
    var sendSocket: Int32 = -1
    /// A WebRTC transport's own TCP listener.
    var tcpListener: Int32 = -1
    var ufragKey: UInt32 = 0
    var tupleKey: UInt32 = 0
    /// Header extension ids this transport's endpoint uses for MID and RID.
    var midExtensionId: UInt8 = 0
    var ridExtensionId: UInt8 = 0
    var rridExtensionId: UInt8 = 0
    /// ICE-lite + DTLS (state in the loop's WebRTC side table).
    var webrtc = false
    /// libsrtp sessions (nil: plain RTP unless `srtpRequired`).
    var srtpSend: SrtpContext? = nil
    var srtpReceive: SrtpContext? = nil
    /// Set once a transport is to speak SRTP (WebRTC, SRTP plain and pipe
    /// transports): from then on a direction without a session sends and
    /// accepts nothing, never plain RTP (fail closed).
    var srtpRequired = false
    /// In-process pipe: outbound link index and the peer's transport handle.
    var pipeLink: Int32 = -1
    var pipePeer = Handle.none
    var bytesAtLastReport: UInt64 = 0
    var bytesOutAtLastReport: UInt64 = 0
    /// `setMaxIncomingBitrate`: the cap and its REMB announcements.
    var incomingLimit = IncomingBitrateLimiter()
    /// Plain and UDP pipe transports with SCTP: datagrams from and to port
    /// 5000 on both ends are SCTP packets for the control layer.
    var rawSctp = false
    /// Congestion feedback to the endpoint: transport-wide CC (the arrival
    /// recorder's index, -1: none, and the endpoint's extension id), or a
    /// receive-side estimate sent as REMB; listed for the feedback timer.
    var transportCc: Int32 = -1
    var transportCcExtensionId: UInt8 = 0
    /// Send side: the estimator's index (-1: none) and the endpoint's id
    /// for the transport-wide sequence number in what we send.
    var sendSide: Int32 = -1
    var sendSideExtensionId: UInt8 = 0
    /// The application's bounds of the estimate (0: none).
    var outgoingMin: UInt32 = 0
    var outgoingMax: UInt32 = 0
    /// `bwe` trace events on, and when the last went out.
    var traceBwe = false
    var lastBweTraceNs: Int64 = 0
    var remb = RembEstimator()
    var feedbackListed = false
    var remoteRtp = SocketAddress()
    var remoteRtcp = SocketAddress()
    var counters = EntityCounters()
    var firstProducer: Int32 = -1
    var firstConsumer: Int32 = -1
    var nextInRouter: Int32 = -1
    var prevInRouter: Int32 = -1
}

package struct ProducerState {
    var inUse = false
    var transport: UInt32 = 0
    var isVideo = false
    var paused = false
    /// SVC (VP9, AV1) spatial layers, counted apart when more than one.
    var svcSpatialLayers: UInt8 = 1
    /// An SVC producer, or one whose temporal layers are only in the
    /// dependency descriptor (H264): its packets' layers are read once, at
    /// the producer stage. Router id of the dependency descriptor (0: none).
    var layered = false
    var dependencyDescriptorId: UInt8 = 0
    /// Router id of the transport-wide element added to each packet (0: none).
    var addTransportWideId: UInt8 = 0
    var payloadTypes = PayloadTypeMap()
    var codecs = InlineArray<128, UInt8>(repeating: 0)
    var extensionIds = ExtensionIdMap()
    /// Per layer (encoding): media SSRC (0 until known), RTX SSRC, receive
    /// stream index.
    var layerCount = 1
    var ssrcs = InlineArray<4, UInt32>(repeating: 0)
    var rtxSsrcs = InlineArray<4, UInt32>(repeating: 0)
    var streams = InlineArray<4, Int32>(repeating: -1)
    var counters = EntityCounters()
    var firstConsumer: Int32 = -1
    /// Router id of the ssrc-audio-level extension (0: none).
    var audioLevelId: UInt8 = 0
    /// Observers watching this producer, with their running sums.
    var observers = InlineArray<4, Int32>(repeating: -1)
    var levelSums = InlineArray<4, UInt32>(repeating: 0)
    var levelCounts = InlineArray<4, UInt32>(repeating: 0)
    var observerCount = 0
    /// Per layer: the outstanding key frame request towards the producer's
    /// endpoint, if any (coalesced; retried once after 1 s).
    var rtxPayloadTypes = PayloadTypeMap()
    /// Consumers that negotiated NACK: the producer's packets are kept for them.
    var nackConsumers: Int32 = 0
    var traceMask: UInt8 = 0
    var keyFrameRequests = InlineArray<4, KeyFrameRequester>(repeating: KeyFrameRequester())
}

/// A producer's cold row, beside its hot `ProducerState` at the same index
/// in `producerCold`: what set-up, reports, key frame requests and list
/// upkeep use, kept out of what every incoming packet reads.
package struct ProducerColdState {
    /// The entity holding this row (events carry it back).
    var handle = Handle.none
    /// Per layer: the RID hash it is found by.
    var ridKeys = InlineArray<4, UInt32>(repeating: 0)
    /// Hash of the MID this producer is found by (0: none).
    var midKey: UInt32 = 0
    var nextInTransport: Int32 = -1
    var prevInTransport: Int32 = -1
    /// Key frame requests towards the producer's endpoint: FIR instead of
    /// PLI (when only "ccm fir" was negotiated), and its request number.
    var useFir = false
    var firSequence: UInt8 = 0
    /// SVC producers: bytes per spatial layer, and each layer's bitrate
    /// over the last report interval.
    var svcBytes = InlineArray<4, UInt64>(repeating: 0)
    var svcBytesAtLastReport = InlineArray<4, UInt64>(repeating: 0)
    var svcBitrates = InlineArray<4, UInt64>(repeating: 0)
    var scores = InlineArray<4, UInt8>(repeating: 10)
    var bytesAtLastReport: UInt64 = 0
}

/// An audio level observer: producers it watches and its interval timer.
package struct ObserverState {
    var inUse = false
    /// The entity holding this row (events carry it back).
    var handle = Handle.none
    var router: UInt32 = 0
    var paused = false
    var intervalNs: Int64 = 0
    var timer: Int32 = -1
    var producers = InlineArray<32, Int32>(repeating: -1)
    var producerCount = 0
}

package struct ConsumerState {
    // Hot: what the fan-out reads for every packet, first and together
    // (Swift lays fields out in this order), so a consumer's forwarding
    // touches few cache lines.
    var inUse = false
    var paused = false
    var producerPaused = false
    /// Set at creation and on every resume: the next forwarded packet
    /// (a key frame's first packet for video) re-bases the sequence numbers.
    var syncRequired = true
    var waitsForKeyFrame = false
    var simulcast = false
    var layered = false
    /// Negotiated transport-wide sequence numbers: its packets are numbered
    /// (the element inserted where the publisher's packet has none).
    var transportWide = false
    var midExtensionId: UInt8 = 0
    var traceMask: UInt8 = 0
    var transport: UInt32 = 0
    var producer: UInt32 = 0
    var ssrc: UInt32 = 0
    var pendingMessage: Int32 = -1
    var nextInProducer: Int32 = -1
    /// Sequence numbers and timestamps out (and back, for NACKs).
    var rtp = RtpRewriter()
    var counters = EntityCounters()
    var payloadTypes = PayloadTypeMap()
    var extensionIds = ExtensionIdMap()
    /// Simulcast: preferred, target (highest active up to preferred) and
    /// current layer (-1: none yet); layered pipe consumers' SSRCs.
    var layers = SimulcastSelector()
    /// VP8 picture id / TL0PICIDX continuity across layer switches.
    var vp8 = Vp8EncodingContext()
    /// VP8 temporal layers forwarded (all unless asked otherwise).
    var temporal = TemporalLayerFilter()
    /// SVC (VP9): the spatial and temporal layers forwarded; the
    /// application's spatial layer and the allocation's limit.
    var svc = false
    var svcLayers = SvcSelector()
    var svcPreferred: UInt8 = 3
    var svcLimit: UInt8 = 3
    /// The MID written into every packet when `midExtensionId` is set.
    var mid = InlineArray<16, UInt8>(repeating: 0)
    var midLength = 0

    var active: Bool { !paused && !producerPaused }
}

/// A consumer's cold row, beside its hot `ConsumerState` at the same index
/// in `consumerCold`: what set-up, retransmission, reports and list upkeep
/// use, kept out of the cache lines the fan-out reads for every packet.
package struct ConsumerColdState {
    /// The entity holding this row (events carry it back).
    var handle = Handle.none
    /// The last FIR request number from this consumer's endpoint (-1:
    /// none): a repeat of the same number is the same request.
    var lastFirSequence: Int16 = -1
    var nack = false
    var rtxSsrc: UInt32 = 0
    var rtxPayloadTypes = PayloadTypeMap()
    var rtxSequence: UInt16 = 0
    /// The RTX payload type padding probes go out with (none: no RTX).
    var probePayloadType = PayloadTypeMap.none
    /// mediasoup's consumer priority: its share of the transport's bitrate.
    var priority: UInt8 = 1
    /// The allocation's memory (see +Allocation): when and at what
    /// estimate the layer limit last went up, and a layer that failed
    /// (went down again soon after), barred below an estimate for a while.
    var limitRaisedNs: Int64 = 0
    var limitRaisedEstimate = 0
    var barredLayer: Int8 = -1
    var barredBelow = 0
    var barredUntilNs: Int64 = 0
    /// Until then upgrades need the larger margin (congestion moved it down).
    var congestedUntilNs: Int64 = 0
    /// A key frame is asked for once the link's queue has drained.
    var keyFrameWhenDrained = false
    var layerSsrcs = InlineArray<4, UInt32>(repeating: 0)
    var layerRtxSsrcs = InlineArray<4, UInt32>(repeating: 0)
    var cname = InlineArray<64, UInt8>(repeating: 0)
    var cnameLength = 0
    /// Our last two SRs (NTP middle 32 bits and when each left), for the
    /// RTT from the endpoint's report (a report crossing our next SR on the
    /// wire names the one before); what that report said; the score.
    var lastSrNtpMiddle: UInt32 = 0
    var lastSrSentNs: Int64 = 0
    var previousSrNtpMiddle: UInt32 = 0
    var previousSrSentNs: Int64 = 0
    var rttNs: Int64 = 0
    var remoteFractionLost: UInt8 = 0
    var remoteLost: Int32 = 0
    var remoteJitter: UInt32 = 0
    var score: UInt8 = 10
    var bytesAtLastReport: UInt64 = 0
    var prevInProducer: Int32 = -1
    var nextInTransport: Int32 = -1
    var prevInTransport: Int32 = -1
}

/// A WebRTC transport's ICE-lite state, by mediasoup's names.
public enum IceState: String, Sendable, Codable, Comparable {
    case new, connected, completed, disconnected, closed

    public static func < (a: IceState, b: IceState) -> Bool { a.order < b.order }
    private var order: Int {
        switch self {
        case .new: 0
        case .connected: 1
        case .completed: 2
        case .disconnected: 3
        case .closed: 4
        }
    }
}

/// A WebRTC transport's DTLS state, by mediasoup's names.
public enum DtlsState: String, Sendable, Codable {
    case new, connecting, connected, failed, closed

    /// Still handshaking or up (records may be read).
    var open: Bool { self == .new || self == .connecting || self == .connected }
}

/// ICE and DTLS state of a WebRTC transport, indexed by transport handle.
package struct WebRtcState {
    var ufrag = InlineArray<64, UInt8>(repeating: 0)
    var ufragLength = 0
    var password = InlineArray<64, UInt8>(repeating: 0)
    var passwordLength = 0
    var ice = IceLiteAgent()
    var dtls: DtlsSession? = nil
    /// -1 unknown until connect(), 0 server, 1 client.
    var dtlsRole: Int8 = -1
    var dtlsState = DtlsState.new
    var dtlsTimer: Int32 = -1
    /// SCTP (data channels) runs over this transport's DTLS: application
    /// data goes to the control layer instead of being discarded.
    var sctp = false
    var fingerprintAlgorithm = InlineArray<16, UInt8>(repeating: 0)
    var fingerprint = InlineArray<192, UInt8>(repeating: 0)
    var fingerprintLength = 0
}

package struct WebRtcServerState {
    var inUse = false
    var socket: Int32 = -1
    var tcpListener: Int32 = -1
}
