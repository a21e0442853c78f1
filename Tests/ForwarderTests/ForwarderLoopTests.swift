import Testing
import RingSFUTestSupport
import RingSFUCShims
@testable import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

@Suite("Forwarder loop on a real ring and loopback sockets")
struct ForwarderLoopTests {
    func startWorker() async throws -> ForwarderWorker {
        var settings = ForwarderSettings()
        settings.receiveBuffers = 256
        settings.sendSlots = 1024
        settings.sendMessages = 512
        settings.maxTransports = 64
        settings.maxProducers = 64
        settings.maxConsumers = 256
        settings.maxRouters = 8
        settings.ssrcTableBits = 10
        let w = try ForwarderWorker(settings: settings) { _ in }
        try await w.start()
        return w
    }

    @Test func fanOutRewritesHeaders() async throws {
        let w = try await startWorker()
        w.send(.addRouter(Handle(index: 0, generation: 1)))
        let inSock = try UdpSocket.bind(ip: "127.0.0.1", port: nil, range: 30000...39999)
        w.send(.addPlainTransport(handle: Handle(index: 0, generation: 1), router: Handle(index: 0, generation: 1), rtpFd: inSock.fd, rtcpFd: nil, comedia: true))
        w.send(.addProducer(handle: Handle(index: 0, generation: 1), transport: Handle(index: 0, generation: 1), ProducerSpec(isVideo: false, ssrcs: [1111], payloadTypes: [(111, 100)], codecs: [(100, .none)], extensionIds: [(1, 5)], paused: false)))
        var sinks: [TestSocket] = []
        for i in 0..<3 {
            let s = try UdpSocket.bind(ip: "127.0.0.1", port: nil, range: 30000...39999)
            let sink = TestSocket()
            sinks.append(sink)
            w.send(.addPlainTransport(handle: Handle(index: Int(1 + i), generation: 1), router: Handle(index: 0, generation: 1), rtpFd: s.fd, rtcpFd: nil, comedia: false))
            w.send(.connectTransport(handle: Handle(index: Int(1 + i), generation: 1), rtp: SocketAddress(ip: "127.0.0.1", port: sink.port)!, rtcp: nil))
            w.send(.addConsumer(handle: Handle(index: Int(i), generation: 1), transport: Handle(index: Int(1 + i), generation: 1), producer: Handle(index: 0, generation: 1), ConsumerSpec(ssrc: 5000 + UInt32(i), payloadTypes: [(100, 100)], extensionIds: i == 0 ? [(5, 3)] : [], paused: false, producerPaused: false, waitsForKeyFrame: false)))
        }
        await w.barrier()
        let sender = TestSocket()
        for seq in UInt16(10)..<UInt16(30) {
            sender.send(makeRtp(pt: 111, seq: seq, ts: 4242, ssrc: 1111, extensions: [(1, [7])]), to: inSock.local.port)
        }
        for (i, sink) in sinks.enumerated() {
            let got = await sink.receiveAll(20)
            #expect(got.count == 20)
            for (k, pkt) in got.enumerated() {
                let h = try pkt.withUnsafeBytes { try RtpHeader.parse($0.baseAddress!, count: $0.count) }
                #expect(h.ssrc == 5000 + UInt32(i))
                #expect(h.payloadType == 100)
                #expect(h.sequenceNumber == 10 + UInt16(k))
                #expect(h.timestamp == 4242)
                var ids: [UInt8] = []
                try pkt.withUnsafeBytes { raw in
                    try RtpHeaderExtensions.forEach(raw.baseAddress!, h) { id, _, _ in ids.append(id) }
                }
                #expect(ids == (i == 0 ? [3] : []))
            }
        }
        let (c, r) = await w.counters()
        #expect(c.packetsIn == 20)
        #expect(c.packetsOut - c.rtcpOut == 60, "RTP out (RTCP reports may go out too)")
        #expect(r.consumers == 3)
        await w.stop()
    }
}

