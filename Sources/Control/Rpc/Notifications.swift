import Foundation

/// Every public event of every entity, with the id of the entity it is
/// about: what entities publish besides their own `events` stream, and what
/// notification taps (the JSON-RPC server among them) receive.
package enum PublishedEvent: Sendable {
    case worker(String, WorkerEvent)
    case router(String, RouterEvent)
    case transport(String, TransportEvent)
    case producer(String, ProducerEvent)
    case consumer(String, ConsumerEvent)
    case dataProducer(String, DataProducerEvent)
    case dataConsumer(String, DataConsumerEvent)
    case audioLevelObserver(String, AudioLevelObserverEvent)
    case activeSpeakerObserver(String, ActiveSpeakerObserverEvent)
}

extension EntityNotification {
    /// The one mapping from typed entity events to mediasoup's notification
    /// names (`<entity>.<event>`) and parameters (`<entity>Id` plus the
    /// event's data).
    init(_ event: PublishedEvent) {
        let method: String, id: String, idKey: String
        var params: [String: JSONValue] = [:]
        switch event {
        case let .worker(entity, e):
            (id, idKey) = (entity, "workerId")
            switch e {
            case .died(let reason):
                method = "worker.died"
                params["error"] = .string(reason)
            }
        case let .router(entity, e):
            (id, idKey) = (entity, "routerId")
            switch e {
            case .workerClose: method = "router.workerclose"
            }
        case let .transport(entity, e):
            (id, idKey) = (entity, "transportId")
            switch e {
            case .routerClose: method = "transport.routerclose"
            case .listenServerClose: method = "transport.listenserverclose"
            case .tuple(let tuple):
                method = "transport.tuple"
                params["tuple"] = .encoding(tuple)
            case .rtcpTuple(let tuple):
                method = "transport.rtcptuple"
                params["rtcpTuple"] = .encoding(tuple)
            case .iceStateChange(let state):
                method = "transport.icestatechange"
                params["iceState"] = .string(state.rawValue)
            case .iceSelectedTupleChange(let tuple):
                method = "transport.iceselectedtuplechange"
                params["iceSelectedTuple"] = .encoding(tuple)
            case .dtlsStateChange(let state):
                method = "transport.dtlsstatechange"
                params["dtlsState"] = .string(state.rawValue)
            case .sctpStateChange(let state):
                method = "transport.sctpstatechange"
                params["sctpState"] = .string(state)
            case .trace(let data):
                method = "transport.trace"
                params["trace"] = .encoding(data)
            case .rtcp(let packet):
                method = "transport.rtcp"
                params["rtcpPacket"] = .string(Data(packet).base64EncodedString())
            }
        case let .producer(entity, e):
            (id, idKey) = (entity, "producerId")
            switch e {
            case .transportClose: method = "producer.transportclose"
            case .score(let score):
                method = "producer.score"
                params["score"] = .encoding(score)
            case .trace(let data):
                method = "producer.trace"
                params["trace"] = .encoding(data)
            }
        case let .consumer(entity, e):
            (id, idKey) = (entity, "consumerId")
            switch e {
            case .transportClose: method = "consumer.transportclose"
            case .producerClose: method = "consumer.producerclose"
            case .producerPause: method = "consumer.producerpause"
            case .producerResume: method = "consumer.producerresume"
            case .rtp(let packet):
                method = "consumer.rtp"
                params["rtpPacket"] = .string(Data(packet).base64EncodedString())
            case .score(let score):
                method = "consumer.score"
                params["score"] = .encoding(score)
            case .layersChange(let layers):
                method = "consumer.layerschange"
                params["layers"] = layers.map { .encoding($0) } ?? .null
            case .trace(let data):
                method = "consumer.trace"
                params["trace"] = .encoding(data)
            }
        case let .dataProducer(entity, e):
            (id, idKey) = (entity, "dataProducerId")
            switch e {
            case .transportClose: method = "dataproducer.transportclose"
            }
        case let .dataConsumer(entity, e):
            (id, idKey) = (entity, "dataConsumerId")
            switch e {
            case .transportClose: method = "dataconsumer.transportclose"
            case .dataProducerClose: method = "dataconsumer.dataproducerclose"
            case .dataProducerPause: method = "dataconsumer.dataproducerpause"
            case .dataProducerResume: method = "dataconsumer.dataproducerresume"
            case .sctpSendBufferFull: method = "dataconsumer.sctpsendbufferfull"
            case let .message(message, ppid):
                method = "dataconsumer.message"
                params["message"] = .string(Data(message).base64EncodedString())
                params["ppid"] = .number(Double(ppid))
            case .bufferedAmountLow(let amount):
                method = "dataconsumer.bufferedamountlow"
                params["bufferedAmount"] = .number(Double(amount))
            }
        case let .audioLevelObserver(entity, e):
            (id, idKey) = (entity, "rtpObserverId")
            switch e {
            case .routerClose: method = "rtpobserver.routerclose"
            case .silence: method = "rtpobserver.silence"
            case .volumes(let volumes):
                method = "rtpobserver.volumes"
                params["volumes"] = .array(volumes.map { .object(["producerId": .string($0.producer.id), "volume": .number(Double($0.volume))]) })
            }
        case let .activeSpeakerObserver(entity, e):
            (id, idKey) = (entity, "rtpObserverId")
            switch e {
            case .routerClose: method = "rtpobserver.routerclose"
            case .dominantSpeaker(let producer):
                method = "rtpobserver.dominantspeaker"
                params["producerId"] = .string(producer.id)
            }
        }
        params[idKey] = .string(id)
        self.init(method: method, entityId: id, params: params)
    }
}
