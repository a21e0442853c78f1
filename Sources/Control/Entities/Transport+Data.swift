import Foundation
import RingSFUForwarder

/// A transport's SCTP association (data channels) and its data producers
/// and consumers.
extension Transport {
    /// The `enableSctp` options every transport kind shares.
    struct SctpOptions {
        var streams: NumSctpStreams?, maxMessageSize: Int?, sendBufferSize: Int?
        init(_ streams: NumSctpStreams?, _ maxMessageSize: Int?, _ sendBufferSize: Int?) {
            self.streams = streams
            self.maxMessageSize = maxMessageSize
            self.sendBufferSize = sendBufferSize
        }
    }

    /// With `enableSctp`, gives the new transport its association; on bad
    /// options the transport is closed again before the error is thrown.
    func setUpSctp(enabled: Bool?, _ options: SctpOptions) throws(SFUError) {
        guard enabled == true else { return }
        do {
            try makeSctpAssociation(options)
        } catch {
            close()
            throw error
        }
    }

    private func makeSctpAssociation(_ options: SctpOptions) throws(SFUError) {
        let streams = options.streams ?? NumSctpStreams()
        guard (1...65535).contains(streams.OS), (1...65535).contains(streams.MIS) else {
            throw .invalidArgument("invalid numSctpStreams (OS and MIS from 1 to 65535)")
        }
        let maxMessage = options.maxMessageSize ?? 262_144
        guard (1...268_435_456).contains(maxMessage) else { throw .invalidArgument("invalid maxSctpMessageSize \(maxMessage)") }
        let sendBuffer = options.sendBufferSize ?? 262_144
        guard (1...268_435_456).contains(sendBuffer) else { throw .invalidArgument("invalid sctpSendBufferSize \(sendBuffer)") }
        let association = try SctpAssociation(streams: streams, maxMessageSize: maxMessage, sendBufferSize: sendBuffer)
        let forwarder = self.forwarder, handle = self.handle
        association.output = { forwarder.send(.sendSctp(transport: handle, $0)) }
        association.onState = { [weak self] in self?.sctpStateChanged($0.rawValue) }
        association.onMessage = { [weak self] streamId, ppid, data in self?.sctpMessage(streamId: Int(streamId), ppid: ppid, data) }
        association.onStreamReset = { [weak self] streamId in self?.sctpStreamReset(Int(streamId)) }
        association.onBufferedAmount = { [weak self] amount in
            for dc in self?.dataConsumers.values ?? [] { dc.sctpBufferedAmountChanged(amount) }
        }
        sctp = association
        sctpState = "new"
        forwarder.send(.enableSctp(transport: handle))
    }

    /// An SCTP packet from the endpoint (out of DTLS, or a plain UDP datagram).
    func sctpData(_ packet: [UInt8]) {
        guard !closed else { return }
        sctp?.input(packet)
    }

    func sctpStateChanged(_ state: String) {
        guard !closed, sctpState != state else { return }
        sctpState = state
        publish(.sctpStateChange(state))
    }

    /// A data channel message: to the data producer on that stream.
    func sctpMessage(streamId: Int, ppid: UInt32, _ data: [UInt8]) {
        guard !closed else { return }
        // DCEP (ppid 50) is not used: mediasoup clients negotiate channels,
        // and its messages are not data.
        guard ppid != 50, let dp = dataProducers.values.first(where: { $0.sctpStreamParameters?.streamId == streamId }) else { return }
        dp.received(data, ppid: ppid)
    }

    /// The endpoint closed its side of a stream: close ours as well (as
    /// mediasoup does, whatever uses it), so its data channel finishes
    /// closing (RFC 8831).
    func sctpStreamReset(_ streamId: Int) {
        guard !closed, let sctp, streamId < sctp.parameters.OS else { return }
        sctp.resetStream(streamId)
    }

    /// Frees the association with the transport (no event, as mediasoup).
    func closeSctp() {
        guard let sctp else { return }
        sctpState = "closed"
        sctp.close()
        self.sctp = nil
    }

    /// How many SCTP stream ids data consumers may use here.
    var sctpStreamLimit: Int { sctp.map { min($0.parameters.OS, $0.parameters.MIS) } ?? 65535 }

    /// The lowest stream id no data consumer of this transport uses.
    func freeSctpStreamId() -> Int? {
        let used = Set(dataConsumers.values.compactMap { $0.sctpStreamParameters?.streamId })
        return (0..<sctpStreamLimit).first { !used.contains($0) }
    }

    /// Starts receiving data messages (SCTP data channel or, on a
    /// DirectTransport, messages the application sends).
    public func produceData(_ options: DataProducerOptions = DataProducerOptions()) throws(SFUError) -> DataProducer {
        try checkOpen()
        guard let router, let worker else { throw .invalidState("Transport closed") }
        guard let type = dataType else { throw .unsupported("SCTP not enabled on this transport") }
        if let id = options.id, router.dataProducers[id] != nil { throw .invalidArgument("a DataProducer with same id \"\(id)\" already exists") }
        let sctp = try options.sctpStreamParameters?.validated()
        if type == "direct", sctp != nil { throw .invalidArgument("sctpStreamParameters are not used on a DirectTransport") }
        if type == "sctp" {
            guard let sctp else { throw .invalidArgument("missing sctpStreamParameters") }
            if let mis = sctpParameters?.MIS, sctp.streamId >= mis {
                throw .invalidArgument("sctpStreamParameters.streamId \(sctp.streamId) not below the incoming stream count (MIS \(mis))")
            }
            if dataProducers.values.contains(where: { $0.sctpStreamParameters?.streamId == sctp.streamId }) {
                throw .invalidArgument("sctpStreamParameters.streamId \(sctp.streamId) already in use")
            }
        }
        let dp = DataProducer(transport: self, id: options.id, type: type, sctpStreamParameters: sctp, label: options.label ?? "", protocol: options.protocol ?? "", paused: options.paused ?? false, appData: options.appData ?? [:])
        dataProducers[dp.id] = dp
        router.dataProducers[dp.id] = dp
        worker.registry.add(dp)
        observerChannel.emit(.newDataProducer(dp))
        return dp
    }

    /// Starts delivering a data producer's messages to this transport.
    public func consumeData(_ options: DataConsumerOptions) throws(SFUError) -> DataConsumer {
        try checkOpen()
        guard let router, let worker else { throw .invalidState("Transport closed") }
        guard let type = dataType else { throw .unsupported("SCTP not enabled on this transport") }
        if let pipe = self as? PipeTransport, pipe.tuple == nil, !pipe.makingPipeDataConsumer {
            throw .invalidState("data consumers on an in-process pipe are made by pipeToRouter")
        }
        guard let dp = router.dataProducers[options.dataProducerId] else {
            throw .failure("DataProducer with id \"\(options.dataProducerId)\" not found")
        }
        var sctp: SctpStreamParameters? = nil
        if type == "sctp" {
            // A stream of our own towards the endpoint, with the producer's
            // reliability unless the options say otherwise (as mediasoup).
            guard let streamId = freeSctpStreamId() else { throw .failure("no free SCTP stream on this transport") }
            let source = dp.sctpStreamParameters
            var p = SctpStreamParameters(streamId: streamId, ordered: options.ordered ?? source?.ordered,
                                         maxPacketLifeTime: options.maxPacketLifeTime ?? source?.maxPacketLifeTime,
                                         maxRetransmits: options.maxRetransmits ?? source?.maxRetransmits)
            if options.ordered == true { p.maxPacketLifeTime = nil; p.maxRetransmits = nil }
            if p.maxPacketLifeTime != nil && p.maxRetransmits != nil { p.maxPacketLifeTime = nil }
            sctp = try p.validated()
        }
        let dc = DataConsumer(transport: self, dataProducer: dp, type: type, sctpStreamParameters: sctp, paused: options.paused ?? false, appData: options.appData ?? [:])
        dataConsumers[dc.id] = dc
        dp.dataConsumers[dc.id] = dc
        worker.registry.add(dc)
        observerChannel.emit(.newDataConsumer(dc))
        return dc
    }
}
