import Foundation

/// The JSON-RPC methods on producers, consumers, data producers and data
/// consumers (mediasoup's names and parameters).
extension RpcSession {
    /// producer.* and consumer.*
    func mediaMethod(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        switch method {
        case "producer.close":
            try producer(p).close()
            return Self.ok
        case "producer.pause":
            try producer(p).pause()
            return Self.ok
        case "producer.resume":
            try producer(p).resume()
            return Self.ok
        case "producer.send":
            try producer(p).send(rtpPacket: try base64(p, "rtpPacket"))
            return Self.ok
        case "producer.dump":
            return .encoding(try producer(p).dump())
        case "producer.getStats":
            return .encoding(try await producer(p).getStats())

        case "consumer.close":
            try consumer(p).close()
            return Self.ok
        case "consumer.pause":
            try consumer(p).pause()
            return Self.ok
        case "consumer.resume":
            try consumer(p).resume()
            return Self.ok
        case "consumer.enableTraceEvent":
            try consumer(p).enableTraceEvent(types: try traceTypes(p))
            return Self.ok
        case "producer.enableTraceEvent":
            try producer(p).enableTraceEvent(types: try traceTypes(p))
            return Self.ok
        case "consumer.setPreferredLayers":
            guard let spatial = p["spatialLayer"]?.numberValue, let s = Int(exactly: spatial) else {
                throw SFUError.invalidArgument("missing or invalid params.spatialLayer")
            }
            let temporal = p["temporalLayer"]?.numberValue.flatMap { Int(exactly: $0) }
            try consumer(p).setPreferredLayers(ConsumerLayers(spatialLayer: s, temporalLayer: temporal))
            return Self.ok
        case "consumer.requestKeyFrame":
            try consumer(p).requestKeyFrame()
            return Self.ok
        case "consumer.setPriority":
            guard let priority = p["priority"]?.numberValue, let value = Int(exactly: priority) else {
                throw SFUError.invalidArgument("missing or invalid params.priority")
            }
            try consumer(p).setPriority(value)
            return Self.ok
        case "consumer.unsetPriority":
            try consumer(p).unsetPriority()
            return Self.ok
        case "consumer.dump":
            return .encoding(try consumer(p).dump())
        case "consumer.getStats":
            return .encoding(try await consumer(p).getStats())
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }

    /// dataProducer.* and dataConsumer.*
    func dataMethod(_ method: String, _ p: JSONValue) async throws -> JSONValue {
        switch method {
        case "dataProducer.send":
            let dp = try dataProducer(p)
            if let text = p["text"]?.stringValue {
                try dp.send(text: text)
            } else {
                let ppid = p["ppid"]?.numberValue.flatMap { UInt32(exactly: $0) }
                try dp.send(try base64(p, "message"), ppid: ppid)
            }
            return Self.ok
        case "dataProducer.close":
            try dataProducer(p).close()
            return Self.ok
        case "dataProducer.pause":
            try dataProducer(p).pause()
            return Self.ok
        case "dataProducer.resume":
            try dataProducer(p).resume()
            return Self.ok
        case "dataProducer.getStats":
            return .encoding(try dataProducer(p).getStats())
        case "dataConsumer.getBufferedAmount":
            return .object(["bufferedAmount": .number(Double(try dataConsumer(p).getBufferedAmount()))])
        case "dataConsumer.setBufferedAmountLowThreshold":
            guard let number = p["threshold"]?.numberValue, let threshold = Int(exactly: number) else {
                throw SFUError.invalidArgument("missing or invalid params.threshold")
            }
            try dataConsumer(p).setBufferedAmountLowThreshold(threshold)
            return Self.ok
        case "dataConsumer.getStats":
            return .encoding(try dataConsumer(p).getStats())
        case "dataProducer.dump":
            return .encoding(try dataProducer(p).dump())
        case "dataConsumer.close":
            try dataConsumer(p).close()
            return Self.ok
        case "dataConsumer.pause":
            try dataConsumer(p).pause()
            return Self.ok
        case "dataConsumer.resume":
            try dataConsumer(p).resume()
            return Self.ok
        case "dataConsumer.dump":
            return .encoding(try dataConsumer(p).dump())
        default:
            throw RpcError(code: -32601, message: "method not found: \(method)", type: "TypeError")
        }
    }
}
