/// Codec families the forwarder knows how to find key frames in.
package enum KeyFrameCodec: UInt8, Sendable {
    case none, vp8, vp9, h264, h265, av1
}

/// What a producer's packets look like to the forwarder, already mapped
/// from the producer's own numbering to the router's.
package struct ProducerSpec: Sendable {
    package var isVideo: Bool
    /// SSRCs the producer sends media on, one per encoding (layer) in
    /// order; 0 where only a RID (or MID) finds the stream.
    package var ssrcs: [UInt32]
    /// Producer payload type -> router payload type.
    package var payloadTypes: [(UInt8, UInt8)]
    /// Router payload type -> codec family, for key frame detection.
    package var codecs: [(UInt8, KeyFrameCodec)]
    /// Producer header extension id -> router id.
    package var extensionIds: [(UInt8, UInt8)]
    package var paused: Bool
    /// An SVC stream's spatial layers (VP9; 1 otherwise): their bitrates
    /// are measured apart for the layer allocation.
    package var svcSpatialLayers: UInt8 = 1
    /// The router's id of the dependency descriptor when the publisher
    /// sends it (0: not sent): AV1 SVC and H264 temporal layers are only
    /// named there.
    package var dependencyDescriptorId: UInt8 = 0
    /// Layers are read per packet: an SVC producer (its consumers pick
    /// layers within the one stream), or H264 with temporal layers.
    package var layered = false
    /// The router's transport-wide sequence number id, when the publisher
    /// did not negotiate the extension: the element is added to its video
    /// packets once, so that consumers that negotiated it can number them.
    package var addTransportWideId: UInt8 = 0
    /// The router's id of the ssrc-audio-level extension, 0 if not sent.
    package var audioLevelId: UInt8 = 0
    /// For streams signalled without SSRCs (RtpListener order: SSRC, then
    /// MID, then RID): the MID and RID values and the extension ids the
    /// endpoint uses for them on this transport (0: none).
    package var mid: [UInt8] = []
    /// Per encoding (layer): its RID, if signalled.
    package var rids: [[UInt8]] = []
    package var midExtensionId: UInt8 = 0
    package var ridExtensionId: UInt8 = 0
    /// The repaired RID's: RTX streams of RID-only layers are learnt by it.
    package var rridExtensionId: UInt8 = 0
    /// The endpoint's id of the transport-wide sequence number extension,
    /// when it also negotiated "transport-cc" feedback (0: not): the
    /// transport then acknowledges every packet's arrival.
    package var transportCcExtensionId: UInt8 = 0
    /// "goog-remb" negotiated (and not transport-cc): the transport sends a
    /// receive-side estimate as REMB.
    package var remb = false
    /// Ask the endpoint for key frames with FIR (only "ccm fir" negotiated).
    package var useFir = false
    /// The media codec's clock rate (statistics), generic NACK negotiated
    /// (lost packets are asked for), and the RTX stream: its SSRC and
    /// producer RTX payload type -> producer media payload type.
    package var clockRate: UInt32 = 90_000
    package var nack = false
    /// Per encoding (layer): its RTX SSRC (0: none).
    package var rtxSsrcs: [UInt32] = []
    package var rtxPayloadTypes: [(UInt8, UInt8)] = []

    package init(isVideo: Bool, ssrcs: [UInt32], payloadTypes: [(UInt8, UInt8)], codecs: [(UInt8, KeyFrameCodec)], extensionIds: [(UInt8, UInt8)], paused: Bool, audioLevelId: UInt8 = 0) {
        self.audioLevelId = audioLevelId
        self.isVideo = isVideo
        self.ssrcs = ssrcs
        self.payloadTypes = payloadTypes
        self.codecs = codecs
        self.extensionIds = extensionIds
        self.paused = paused
    }
}

/// How a consumer rewrites its producer's (router-mapped) packets.
package struct ConsumerSpec: Sendable {
    package var ssrc: UInt32
    /// Router payload type -> consumer payload type.
    package var payloadTypes: [(UInt8, UInt8)]
    /// Router header extension id -> consumer id (absent: removed).
    package var extensionIds: [(UInt8, UInt8)]
    package var paused: Bool
    package var producerPaused: Bool
    /// Video consumers start and restart on a key frame.
    package var waitsForKeyFrame: Bool
    /// The consumer's MID and the extension id it goes in: a packet's MID
    /// (the producer's) is replaced with it, so BUNDLEd endpoints demux.
    package var mid: [UInt8] = []
    /// The endpoint's id for the transport-wide sequence number (0: not
    /// negotiated): the transport numbers what it sends and estimates.
    package var transportCcExtensionId: UInt8 = 0
    package var midExtensionId: UInt8 = 0
    /// Generic NACK negotiated: lost packets are resent, as RTX on
    /// `rtxSsrc` with the RTX payload type of each codec (router PT -> RTX
    /// PT), or as plain retransmissions without RTX.
    package var nack = false
    package var rtxSsrc: UInt32 = 0
    package var rtxPayloadTypes: [(UInt8, UInt8)] = []
    /// The CNAME in the consumer's SDES (the producer's, as mediasoup does).
    package var cname: [UInt8] = []
    /// A simulcast consumer: one of the producer's layers at a time, the
    /// highest active one up to `preferredLayer`, switched on key frames.
    package var simulcast = false
    package var preferredLayer = 0
    /// Its share of the transport's available bitrate (1-255).
    package var priority: UInt8 = 1
    /// The highest VP8 temporal layer to forward (`TemporalLayerFilter.all`: every one).
    package var temporalLayer = TemporalLayerFilter.all
    /// An SVC consumer (VP9): spatial layers up to `preferredLayer`,
    /// temporal layers up to `temporalLayer`.
    package var svc = false
    /// A pipe consumer of a layered producer: every layer, each with its
    /// own SSRC (and RTX SSRC), numbering untouched.
    package var layerSsrcs: [UInt32] = []
    package var layerRtxSsrcs: [UInt32] = []

    package init(ssrc: UInt32, payloadTypes: [(UInt8, UInt8)], extensionIds: [(UInt8, UInt8)], paused: Bool, producerPaused: Bool, waitsForKeyFrame: Bool) {
        self.ssrc = ssrc
        self.payloadTypes = payloadTypes
        self.extensionIds = extensionIds
        self.paused = paused
        self.producerPaused = producerPaused
        self.waitsForKeyFrame = waitsForKeyFrame
    }
}

/// Trace event types, as bits of a producer's or consumer's trace mask.
package enum TraceType: UInt8, Sendable, CaseIterable {
    case rtp = 1, keyframe = 2, nack = 4, pli = 8, fir = 16, sr = 32

    package var name: String {
        switch self {
        case .rtp: "rtp"
        case .keyframe: "keyframe"
        case .nack: "nack"
        case .pli: "pli"
        case .fir: "fir"
        case .sr: "sr"
        }
    }
}

/// One trace event, flat (no allocation beyond the event queue's).
package struct BweRecord: Sendable, Equatable {
    package var availableBitrate: Int
    package var ackedBitrate: Int
    package var delayBasedBitrate: Int
    package var lossBasedBitrate: Int
    package var lossFraction: Double
    package var minBitrate: Int
    package var maxBitrate: Int
    /// The latest probe cluster's result (0: none yet).
    package var probeBitrate = 0
}

package struct TraceRecord: Sendable {
    package var consumer: Bool
    package var handle: Handle
    package var type: TraceType
    /// Received by the SFU (in) or sent by it (out).
    package var incoming: Bool
    package var ssrc: UInt32
    /// RTP fields (rtp, keyframe), or a NACK's first sequence number and count.
    package var sequenceNumber: UInt16 = 0
    package var timestamp: UInt32 = 0
    package var payloadType: UInt8 = 0
    package var marker = false
    package var size: Int = 0
    package var count: Int = 0
}

/// Figures the forwarder reports about one entity.
package enum StatsTarget: Sendable {
    case transport(Handle), producer(Handle), consumer(Handle)
    /// One layer (encoding) of a producer.
    case producerLayer(Handle, Int)
}

/// Commands from the control plane, applied on the forwarder thread in the
/// order they were sent. Handles are indices the control plane allocated
/// from this worker's `HandleSpace`.
package enum ForwarderCommand: Sendable {
    case addRouter(Handle)
    case closeRouter(Handle)
    case addPlainTransport(handle: Handle, router: Handle, rtpFd: Int32, rtcpFd: Int32?, comedia: Bool)
    /// An ICE-lite + DTLS + SRTP transport on its own UDP socket and/or
    /// TCP listener.
    case addWebRtcTransport(handle: Handle, router: Handle, fd: Int32?, tcpFd: Int32?, IceCredentials)
    /// A WebRTC server: one UDP socket and/or one TCP listener shared by
    /// many WebRTC transports.
    case addWebRtcServer(handle: Handle, fd: Int32?, tcpFd: Int32?)
    /// Closes the server's socket and every transport on it.
    case closeWebRtcServer(Handle)
    /// A WebRTC transport on a server's socket, found by ufrag, then tuple.
    case addServerWebRtcTransport(handle: Handle, router: Handle, server: Handle, IceCredentials)
    /// The remote DTLS parameters: our role and the fingerprint to expect.
    case connectWebRtcTransport(handle: Handle, client: Bool, fingerprintAlgorithm: String, fingerprint: String)
    case restartIce(handle: Handle, IceCredentials)
    /// A transport without sockets: the application injects and receives packets.
    case addDirectTransport(handle: Handle, router: Handle)
    /// An RTP packet from the application, routed as if received on the transport.
    case injectRtp(transport: Handle, [UInt8])
    case connectTransport(handle: Handle, rtp: SocketAddress, rtcp: SocketAddress?)
    /// SRTP for a socket transport: what it sends is protected with `sendKey`,
    /// what it receives is unprotected with `receiveKey` (each when given).
    case setTransportSrtp(handle: Handle, send: SrtpKey?, receive: SrtpKey?)
    case closeTransport(Handle)
    case addProducer(handle: Handle, transport: Handle, ProducerSpec)
    case closeProducer(Handle)
    case setProducerPaused(Handle, Bool)
    case addConsumer(handle: Handle, transport: Handle, producer: Handle, ConsumerSpec)
    case closeConsumer(Handle)
    case setConsumerPaused(Handle, Bool)
    /// Asks the consumer's producer for a key frame (PLI or FIR).
    case requestKeyFrame(consumer: Handle)
    /// A simulcast consumer's preferred spatial layer.
    case setConsumerPreferredLayers(Handle, spatial: Int, temporal: UInt8)
    /// A consumer's priority in its transport's layer allocation.
    case setConsumerPriority(Handle, UInt8)
    /// Hands a WebRTC transport's DTLS application data (SCTP) to the
    /// control layer, and sends SCTP packets as DTLS records.
    case enableSctp(transport: Handle)
    case sendSctp(transport: Handle, [UInt8])
    /// Caps what the transport's endpoint sends us (REMB; 0 lifts the cap).
    case setMaxIncomingBitrate(transport: Handle, UInt32)
    /// `setMinOutgoingBitrate`/`setMaxOutgoingBitrate` (0: none).
    case setOutgoingBitrateBounds(transport: Handle, min: UInt32, max: UInt32)
    /// Transport trace events: `bwe` (the send-side estimate, at most once a second).
    case setTransportTrace(transport: Handle, bwe: Bool)
    /// Which trace events (TraceType bits) a producer or consumer reports.
    case setProducerTrace(Handle, UInt8)
    case setConsumerTrace(Handle, UInt8)
    case stats(StatsTarget, @Sendable (EntityCounters) -> Void)
    case counters(@Sendable (ForwarderCounters, ForwarderResources) -> Void)
    /// Every transport's figures at once (for metrics exports).
    case transportFigures(@Sendable ([(Handle, EntityCounters)]) -> Void)
    /// Runs the reply once every earlier command has been applied.
    case barrier(@Sendable () -> Void)
    /// A ring towards another worker (or this one): outbound link `index`.
    case addOutboundPipe(index: UInt32, PipeRing)
    /// A ring this worker drains.
    case addInboundPipe(PipeRing)
    /// One end of an in-process pipe: consumers' packets go into outbound
    /// link `link`, addressed to the peer worker's transport `peer`.
    case addPipeTransport(handle: Handle, router: Handle, link: UInt32, peer: Handle)
    /// An audio level observer reporting every `intervalMs`.
    case addAudioLevelObserver(handle: Handle, router: Handle, intervalMs: UInt32)
    case closeObserver(Handle)
    case observerAddProducer(observer: Handle, producer: Handle)
    case observerRemoveProducer(observer: Handle, producer: Handle)
    case setObserverPaused(Handle, Bool)
    /// Test hook: behave as if the ring failed fatally.
    case simulateFatalError
}

/// Notifications from the forwarder thread to the control plane.
package enum ForwarderEvent: Sendable {
    /// A comedia transport learnt its remote address from the first packet.
    case tupleLearned(transport: Handle, rtcp: Bool, SocketAddress)
    /// ICE selected (or switched) the transport's tuple.
    case iceSelectedTuple(transport: Handle, SocketAddress, tcp: Bool)
    /// ICE state: connected, completed, disconnected.
    case iceState(transport: Handle, IceState)
    /// DTLS state: connecting, connected, failed, closed.
    case dtlsState(transport: Handle, DtlsState)
    /// A consumer on a direct transport produced an RTP packet.
    case directRtp(consumer: Handle, [UInt8])
    /// RTCP the forwarder sends to a DirectTransport's application.
    case directRtcp(transport: Handle, [UInt8])
    /// An SCTP packet received over a WebRTC transport's DTLS.
    case sctpData(transport: Handle, [UInt8])
    /// An audio level observer's interval ended: per producer, the sum of
    /// the audio levels (-dBov, 0-127) seen and how many packets had one.
    case audioLevels(observer: Handle, [AudioLevelSample])
    /// A producer's score (0-10, from its loss after repair) or a
    /// consumer's (from its endpoint's receiver reports) changed.
    case producerScore(producer: Handle, layer: Int, UInt8)
    /// A simulcast consumer now forwards this layer (-1: none).
    case consumerLayer(consumer: Handle, layer: Int, temporal: UInt8)
    /// A trace event of a producer or consumer that enabled its type.
    case trace(TraceRecord)
    /// A transport's send-side estimate (bps) with what it is made of.
    case bwe(transport: Handle, BweRecord)
    case consumerScore(consumer: Handle, score: UInt8, producerScore: UInt8)
    /// An SRTP session could not be created from the keys given: the
    /// transport sends and accepts nothing in that direction.
    case srtpFailed(transport: Handle, String)
    /// The worker thread stopped on a fatal error.
    case died(String)
}

/// One producer's audio levels over an observer interval.
package struct AudioLevelSample: Sendable, Equatable {
    package var producer: Handle
    package var levelSum: UInt32
    package var count: UInt32
}

/// A suite and its master key plus salt.
package struct SrtpKey: Sendable, Equatable {
    package var suite: SrtpCryptoSuite
    package var key: [UInt8]
    package init(suite: SrtpCryptoSuite, key: [UInt8]) {
        self.suite = suite
        self.key = key
    }
}

/// Local ICE credentials of a WebRTC transport.
package struct IceCredentials: Sendable, Equatable {
    package var usernameFragment: [UInt8]
    package var password: [UInt8]
    package init(usernameFragment: [UInt8], password: [UInt8]) {
        self.usernameFragment = usernameFragment
        self.password = password
    }
}
