/// Options of `transport.produce`, with mediasoup's field names.
public struct ProducerOptions: Codable, Sendable {
    public var id: String?
    public var kind: MediaKind
    public var rtpParameters: RtpParameters
    public var paused: Bool?
    public var keyFrameRequestDelay: Int?
    public var appData: AppData?

    public init(id: String? = nil, kind: MediaKind, rtpParameters: RtpParameters, paused: Bool? = false, keyFrameRequestDelay: Int? = nil, appData: AppData? = nil) {
        self.id = id
        self.kind = kind
        self.rtpParameters = rtpParameters
        self.paused = paused
        self.keyFrameRequestDelay = keyFrameRequestDelay
        self.appData = appData
    }
}

/// Options of `transport.consume`, with mediasoup's field names.
public struct ConsumerOptions: Codable, Sendable {
    public var producerId: String
    public var rtpCapabilities: RtpCapabilities
    public var paused: Bool?
    public var mid: String?
    public var enableRtx: Bool?
    public var ignoreDtx: Bool?
    public var pipe: Bool?
    /// Simulcast consumers: the spatial layer to forward when available (default: the highest).
    public var preferredLayers: ConsumerLayers?
    public var appData: AppData?

    public init(producerId: String, rtpCapabilities: RtpCapabilities, paused: Bool? = false, mid: String? = nil, enableRtx: Bool? = nil, ignoreDtx: Bool? = nil, pipe: Bool? = nil,
                preferredLayers: ConsumerLayers? = nil, appData: AppData? = nil) {
        self.preferredLayers = preferredLayers
        self.producerId = producerId
        self.rtpCapabilities = rtpCapabilities
        self.paused = paused
        self.mid = mid
        self.enableRtx = enableRtx
        self.ignoreDtx = ignoreDtx
        self.pipe = pipe
        self.appData = appData
    }
}
