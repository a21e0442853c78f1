import Foundation

/// The JSON-RPC methods on workers, WebRTC servers, routers, RTP observers
/// and transports (mediasoup's names and parameters).
extension RpcSession {
    /// worker.* and webRtcServer.*
    func workerMethod(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        switch method {
        case "worker.list":
            return .array(pool.workers.map { .object(["id": .string($0.id), "routerCount": .number(Double($0.routerCount)), "closed": .bool($0.closed)]) })
        case "worker.createRouter":
            struct Params: Decodable { var mediaCodecs: [RtpCodecCapability]?; var appData: AppData? }
            let params = try p.decode(Params.self)
            let w = try worker(p)
            let r = try w.createRouter(mediaCodecs: params.mediaCodecs ?? [], appData: params.appData ?? [:])
            owned.insert(r.id)
            ownedRouters.append(r)
            return .object(["id": .string(r.id), "workerId": .string(w.id), "rtpCapabilities": .encoding(r.rtpCapabilities)])
        case "worker.createWebRtcServer":
            var options = try p.decode(WebRtcServerOptions.self)
            let w = try worker(p)
            options.listenInfos = try announce(options.listenInfos, field: "listenInfos", candidates: true, worker: w)
            try checkPorts(options.listenInfos, worker: w, field: "listenInfos")
            let s = try w.createWebRtcServer(options)
            owned.insert(s.id)
            ownedServers.append(s)
            return .object(["id": .string(s.id), "tuple": .encoding(s.tuple), "tuples": .encoding(s.tuples)])
        case "webRtcServer.close":
            let id = try string(p, "webRtcServerId")
            guard mine(id), let s = pool.workers.lazy.compactMap({ $0.webRtcServers[id] }).first else { throw lookupFailure("WebRtcServer", id) }
            s.close()
            return Self.ok
        case "webRtcServer.dump":
            let id = try string(p, "webRtcServerId")
            guard mine(id), let s = pool.workers.lazy.compactMap({ $0.webRtcServers[id] }).first else { throw lookupFailure("WebRtcServer", id) }
            return .encoding(try s.dump())
        case "worker.updateSettings":
            try requireAdmin(method)
            let level = p["logLevel"]
            guard level == nil || level?.stringValue != nil else { throw SFUError.invalidArgument("invalid params.logLevel (a string)") }
            try worker(p).updateSettings(logLevel: level?.stringValue)
            return Self.ok
        case "worker.getResourceUsage":
            try requireAdmin(method)
            return .encoding(try await worker(p).getResourceUsage())
        case "worker.dump":
            let w = try worker(p)
            if admin { return .encoding(await w.dump()) }
            // Only this session's routers and WebRTC servers; no worker-wide figures.
            return .object(["id": .string(w.id), "routerIds": .array(w.routers.keys.filter { owned.contains($0) }.map { .string($0) }),
                            "webRtcServerIds": .array(w.webRtcServers.keys.filter { owned.contains($0) }.map { .string($0) })])
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    /// router.* and rtpObserver.*
    func routerMethod(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        switch method {
        case "router.close":
            try router(p).close()
            return Self.ok
        case "router.dump":
            return .encoding(try router(p).dump())
        case "router.getRtpCapabilities":
            return .encoding(try router(p, joined: true).rtpCapabilities)
        case "router.canConsume":
            struct Params: Decodable { var producerId: String; var rtpCapabilities: RtpCapabilities }
            let params = try p.decode(Params.self)
            return .object(["canConsume": .bool(try router(p, joined: true).canConsume(producerId: params.producerId, rtpCapabilities: params.rtpCapabilities))])
        case "router.createPlainTransport":
            var options = try p.decode(PlainTransportOptions.self)
            let r = try router(p, joined: true)
            options.listenInfo = try announce(options.listenInfo, field: "listenInfo", candidates: false, worker: r.worker)
            options.rtcpListenInfo = try options.rtcpListenInfo.map { info throws(SFUError) in try announce(info, field: "rtcpListenInfo", candidates: false, worker: r.worker) }
            try checkPorts([options.listenInfo], worker: r.worker, field: "listenInfo")
            try checkPorts([options.rtcpListenInfo], worker: r.worker, field: "rtcpListenInfo")
            let t = try r.createPlainTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return plainTransportJSON(t)

        case "router.createWebRtcTransport":
            var options = try p.decode(WebRtcTransportOptions.self)
            let r = try router(p, joined: true)
            options.listenInfos = try options.listenInfos.map { infos throws(SFUError) in try announce(infos, field: "listenInfos", candidates: true, worker: r.worker) }
            if let server = options.webRtcServerId, !mine(server) { throw SFUError.invalidArgument("unknown webRtcServerId \"\(server)\"") }
            try checkPorts(options.listenInfos ?? [], worker: r.worker, field: "listenInfos")
            let t = try r.createWebRtcTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return .object([
                "id": .string(t.id), "iceParameters": .encoding(t.iceParameters), "iceCandidates": .encoding(t.iceCandidates),
                "dtlsParameters": .encoding(t.dtlsParameters), "sctpParameters": t.sctpParameters.map { .encoding($0) } ?? .null,
                "iceState": .string(t.iceState.rawValue), "dtlsState": .string(t.dtlsState.rawValue), "sctpState": t.sctpState.map { .string($0) } ?? .null,
            ])
        case "router.createDirectTransport":
            let options = try p.decode(DirectTransportOptions.self)
            let t = try router(p, joined: true).createDirectTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return .object(["id": .string(t.id), "maxMessageSize": .number(Double(t.maxMessageSize))])

        case "router.createPipeTransport":
            var options = try p.decode(PipeTransportOptions.self)
            let r = try router(p, joined: true)
            options.listenInfo = try announce(options.listenInfo, field: "listenInfo", candidates: false, worker: r.worker)
            try checkPorts([options.listenInfo], worker: r.worker, field: "listenInfo")
            let t = try r.createPipeTransport(options)
            owned.insert(t.id)
            ownedTransports.append(t)
            return .object(["id": .string(t.id), "tuple": t.tuple.map { .encoding($0) } ?? .null, "srtpParameters": t.srtpParameters.map { .encoding($0) } ?? .null,
                            "sctpParameters": t.sctpParameters.map { .encoding($0) } ?? .null, "sctpState": t.sctpState.map { .string($0) } ?? .null])
        case "router.pipeToRouter":
            let source = try router(p)
            let targetId = try string(p, "targetRouterId")
            guard mine(targetId), let target = pool.router(id: targetId) else { throw lookupFailure("Router", targetId) }
            if p["dataProducerId"] != nil {
                guard p["producerId"] == nil else { throw SFUError.invalidArgument("just producerId or dataProducerId can be given") }
                let dataProducerId = try string(p, "dataProducerId")
                let result = try source.pipeToRouter(dataProducerId: dataProducerId, router: target)
                owned.insert(result.pipeDataConsumer.id)
                owned.insert(result.pipeDataProducer.id)
                return .object(["pipeDataConsumerId": .string(result.pipeDataConsumer.id), "pipeDataProducerId": .string(result.pipeDataProducer.id)])
            }
            let result = try source.pipeToRouter(producerId: try string(p, "producerId"), router: target)
            owned.insert(result.pipeConsumer.id)
            owned.insert(result.pipeProducer.id)
            return .object(["pipeConsumerId": .string(result.pipeConsumer.id), "pipeProducerId": .string(result.pipeProducer.id)])
        case "router.createAudioLevelObserver":
            let options = try p.decode(AudioLevelObserverOptions.self)
            let o = try router(p).createAudioLevelObserver(options)
            owned.insert(o.id)
            return .object(["id": .string(o.id)])

        case "router.createActiveSpeakerObserver":
            let options = try p.decode(ActiveSpeakerObserverOptions.self)
            let o = try router(p).createActiveSpeakerObserver(options)
            owned.insert(o.id)
            return .object(["id": .string(o.id)])

        case "rtpObserver.addProducer":
            try rtpObserver(p).addProducer(producerId: try string(p, "producerId"))
            return Self.ok
        case "rtpObserver.removeProducer":
            try rtpObserver(p).removeProducer(producerId: try string(p, "producerId"))
            return Self.ok
        case "rtpObserver.pause":
            try rtpObserver(p).pause()
            return Self.ok
        case "rtpObserver.resume":
            try rtpObserver(p).resume()
            return Self.ok
        case "rtpObserver.close":
            try rtpObserver(p).close()
            return Self.ok
        case "rtpObserver.dump":
            return .encoding(try rtpObserver(p).dump())
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    /// transport.*
    func transportMethod(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        switch method {
        case "transport.restartIce":
            guard let w = try transport(p) as? WebRtcTransport else { throw SFUError.invalidState("restartIce() is only for a WebRtcTransport") }
            return .object(["iceParameters": .encoding(try w.restartIce())])

        case "transport.sendRtcp":
            guard let direct = try transport(p) as? DirectTransport else { throw SFUError.invalidState("sendRtcp() is only for a DirectTransport") }
            try direct.sendRtcp(try base64(p, "rtcpPacket"))
            return Self.ok
        case "transport.connect":
            struct Params: Decodable { var ip: String?; var port: Int?; var rtcpPort: Int?; var srtpParameters: SrtpParameters?; var dtlsParameters: DtlsParameters? }
            let t = try transport(p)
            let params = try p.decode(Params.self)
            if let w = t as? WebRtcTransport {
                guard let dtls = params.dtlsParameters else { throw SFUError.invalidArgument("missing params.dtlsParameters") }
                try w.connect(dtlsParameters: dtls)
                return Self.ok
            }
            if let pipe = t as? PipeTransport {
                guard let ip = params.ip, let port = params.port else { throw SFUError.invalidArgument("missing params.ip or params.port") }
                try pipe.connect(ip: ip, port: port, srtpParameters: params.srtpParameters)
                return .object(["tuple": pipe.tuple.map { .encoding($0) } ?? .null])
            }
            guard let plain = t as? PlainTransport else { throw SFUError.unsupported("connect parameters of this transport type") }
            try plain.connect(ip: params.ip, port: params.port, rtcpPort: params.rtcpPort, srtpParameters: params.srtpParameters)
            return .object(["tuple": .encoding(plain.tuple)])
        case "transport.close":
            try transport(p).close()
            return Self.ok
        case "transport.setMaxIncomingBitrate", "transport.setMaxOutgoingBitrate", "transport.setMinOutgoingBitrate":
            guard let number = p["bitrate"]?.numberValue, let bitrate = Int(exactly: number) else {
                throw SFUError.invalidArgument("missing or invalid params.bitrate")
            }
            let t = try transport(p)
            switch method {
            case "transport.setMaxIncomingBitrate": try t.setMaxIncomingBitrate(bitrate)
            case "transport.setMaxOutgoingBitrate": try t.setMaxOutgoingBitrate(bitrate)
            default: try t.setMinOutgoingBitrate(bitrate)
            }
            return Self.ok
        case "transport.enableTraceEvent":
            try transport(p).enableTraceEvent(types: try traceTypes(p))
            return Self.ok
        case "transport.dump":
            let t = try transport(p)
            if let plain = t as? PlainTransport { return .encoding(try plain.dump()) }
            if let direct = t as? DirectTransport { return .encoding(try direct.dump()) }
            if let webrtc = t as? WebRtcTransport { return .encoding(try webrtc.dump()) }
            if let pipe = t as? PipeTransport { return .encoding(try pipe.dump()) }
            return .object(["id": .string(t.id)])
        case "transport.getStats":
            return .encoding(try await transport(p).getStats())
        case "transport.produce":
            let options = try p.decode(ProducerOptions.self)
            let t = try transport(p)
            let producer = try t.produce(options)
            owned.insert(producer.id)
            if let rooms, let router = t.router, joinedRoom(of: router) != nil {
                do { try await rooms.produced(producer, transport: t, router: router) } catch {
                    producer.close()
                    throw error
                }
            }
            return .object(["id": .string(producer.id), "kind": .string(producer.kind.rawValue), "type": .string(producer.type.rawValue), "paused": .bool(producer.paused), "rtpParameters": .encoding(producer.rtpParameters)])
        case "transport.consume":
            let options = try p.decode(ConsumerOptions.self)
            let t = try transport(p)
            if let rooms, let router = t.router, joinedRoom(of: router) != nil {
                try await rooms.prepareConsume(producerId: options.producerId, router: router)
            }
            let c = try t.consume(options)
            owned.insert(c.id)
            return .object([
                "id": .string(c.id), "producerId": .string(c.producerId), "kind": .string(c.kind.rawValue),
                "rtpParameters": .encoding(c.rtpParameters), "type": .string(c.type.rawValue),
                "paused": .bool(c.paused), "producerPaused": .bool(c.producerPaused),
            ])

        case "transport.produceData":
            let options = try p.decode(DataProducerOptions.self)
            let dp = try transport(p).produceData(options)
            owned.insert(dp.id)
            return .object(["id": .string(dp.id), "type": .string(dp.type), "label": .string(dp.label), "protocol": .string(dp.protocol), "sctpStreamParameters": dp.sctpStreamParameters.map { .encoding($0) } ?? .null])
        case "transport.consumeData":
            let options = try p.decode(DataConsumerOptions.self)
            let dc = try transport(p).consumeData(options)
            owned.insert(dc.id)
            return .object(["id": .string(dc.id), "dataProducerId": .string(dc.dataProducerId), "type": .string(dc.type), "label": .string(dc.label), "protocol": .string(dc.protocol), "paused": .bool(dc.paused), "dataProducerPaused": .bool(dc.dataProducerPaused), "sctpStreamParameters": dc.sctpStreamParameters.map { .encoding($0) } ?? .null])
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }
}
