import ArgumentParser
import Foundation
import RingSFU

extension Fanout {
    /// The producers piped from `home` to `router` the way cluster nodes
    /// pipe them: a PipeTransport pair on loopback UDP, SRTP both ways, RTX
    /// negotiated; one pipe consumer and one pipe producer per producer.
    @RingSFUActor
    static func pipeOverUdp(_ producers: [Producer], from home: Router, to router: Router) throws -> [Producer] {
        let listen = TransportListenInfo(protocol: "udp", ip: "127.0.0.1")
        let near = try home.createPipeTransport(PipeTransportOptions(listenInfo: listen, enableRtx: true, enableSrtp: true))
        let far = try router.createPipeTransport(PipeTransportOptions(listenInfo: listen, enableRtx: true, enableSrtp: true))
        guard let nearTuple = near.tuple, let farTuple = far.tuple else { throw ValidationError("pipe transports without a tuple") }
        try near.connect(ip: "127.0.0.1", port: farTuple.localPort, srtpParameters: far.srtpParameters)
        try far.connect(ip: "127.0.0.1", port: nearTuple.localPort, srtpParameters: near.srtpParameters)
        return try producers.map { p in
            let c = try near.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: RtpCapabilities()))
            return try far.produce(ProducerOptions(id: p.id, kind: c.kind, rtpParameters: c.rtpParameters, paused: c.producerPaused))
        }
    }
}
