import Testing
import RingSFUTestSupport
@testable import RingSFU

/// The closure cascades of doc/closures.md: exact public and observer
/// events, in order, every sequence finishing, and the forwarder's
/// resources released.
@Suite("Closures") @RingSFUActor
struct ClosureTests {
    struct Graph {
        let worker: Worker
        let router: Router
        let sendTransport: PlainTransport
        let recvTransport: PlainTransport
        let producer: Producer
        let consumer: Consumer
    }

    func makeGraph() async throws -> Graph {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [opus, vp8])
        let send = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let recv = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        let producer = try send.produce(ProducerOptions(kind: .video, rtpParameters: videoParams(ssrc: 1234)))
        let consumer = try recv.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: router.rtpCapabilities))
        return Graph(worker: worker, router: router, sendTransport: send, recvTransport: recv, producer: producer, consumer: consumer)
    }

    @Test func consumerClose() async throws {
        let g = try await makeGraph()
        let ev = g.consumer.events, ob = g.consumer.observer
        g.consumer.close()
        #expect(names(await collect(ev)) == [])
        #expect(names(await collect(ob)) == ["close"])
        #expect(g.producer.consumerCount == 0)
        #expect(g.recvTransport.consumerCount == 0)
        g.consumer.close() // no-op
        #expect(throws: SFUError.invalidState("Consumer closed")) { try g.consumer.pause() }
        await g.worker.sync()
        let usage = await g.worker.getResourceUsage()
        #expect(usage.consumers == 0 && usage.producers == 1)
        g.worker.close()
    }

    @Test func producerCloseClosesConsumers() async throws {
        let g = try await makeGraph()
        let pev = g.producer.events, pob = g.producer.observer
        let cev = g.consumer.events, cob = g.consumer.observer
        g.producer.close()
        #expect(names(await collect(pev)) == [])
        #expect(names(await collect(pob)) == ["close"])
        #expect(names(await collect(cev)) == ["producerClose"])
        #expect(names(await collect(cob)) == ["close"])
        #expect(g.consumer.closed)
        #expect(g.router.producers.isEmpty)
        #expect(g.sendTransport.producerCount == 0 && g.recvTransport.consumerCount == 0)
        await g.worker.sync()
        let usage = await g.worker.getResourceUsage()
        #expect(usage.consumers == 0 && usage.producers == 0 && usage.ssrcEntries == 0)
        g.worker.close()
    }

    @Test func transportCloseWithOtherTransportsConsumer() async throws {
        let g = try await makeGraph()
        let tob = g.sendTransport.observer, tev = g.sendTransport.events
        let pev = g.producer.events, pob = g.producer.observer
        let cev = g.consumer.events
        let port = g.sendTransport.tuple.localPort
        g.sendTransport.close()
        #expect(names(await collect(tev)) == [])
        #expect(names(await collect(tob)) == ["close"])
        #expect(names(await collect(pev)) == ["transportClose"])
        #expect(names(await collect(pob)) == ["close"])
        // A consumer on another transport learns that its producer closed.
        #expect(names(await collect(cev)) == ["producerClose"])
        #expect(await portIsFree(port))
        await g.worker.sync()
        let usage = await g.worker.getResourceUsage()
        #expect(usage.transports == 1 && usage.producers == 0 && usage.consumers == 0 && usage.sockets == 1)
        g.worker.close()
    }

    /// The case doc/closures.md warns about: a transport holding both a
    /// producer and a consumer of it. The consumer gets transportClose only.
    @Test func transportCloseWithProducerAndConsumerOnIt() async throws {
        let g = try await makeGraph()
        let loopConsumer = try g.sendTransport.consume(ConsumerOptions(producerId: g.producer.id, rtpCapabilities: g.router.rtpCapabilities))
        let lev = loopConsumer.events, lob = loopConsumer.observer
        let otherEv = g.consumer.events
        g.sendTransport.close()
        #expect(names(await collect(lev)) == ["transportClose"])
        #expect(names(await collect(lob)) == ["close"])
        #expect(names(await collect(otherEv)) == ["producerClose"])
        g.worker.close()
    }

    @Test func routerClose() async throws {
        let g = try await makeGraph()
        let rev = g.router.events, rob = g.router.observer
        let t1 = g.sendTransport.events, t2 = g.recvTransport.events
        let pev = g.producer.events, cev = g.consumer.events
        let ports = [g.sendTransport.tuple.localPort, g.recvTransport.tuple.localPort]
        g.router.close()
        #expect(names(await collect(rev)) == [])
        #expect(names(await collect(rob)) == ["close"])
        #expect(names(await collect(t1)) == ["routerClose"])
        #expect(names(await collect(t2)) == ["routerClose"])
        #expect(names(await collect(pev)) == ["transportClose"])
        // Router teardown is silent below transports: transportClose, not producerClose.
        #expect(names(await collect(cev)) == ["transportClose"])
        #expect(g.worker.routerCount == 0)
        for p in ports { #expect(await portIsFree(p)) }
        #expect(throws: SFUError.self) { _ = try g.router.createPlainTransport(PlainTransportOptions(listenInfo: loopback)) }
        await g.worker.sync()
        let usage = await g.worker.getResourceUsage()
        #expect(usage.routers == 0 && usage.transports == 0 && usage.sockets == 0)
        g.worker.close()
    }

    @Test func workerClose() async throws {
        let g = try await makeGraph()
        let wev = g.worker.events, wob = g.worker.observer
        let rev = g.router.events, tev = g.recvTransport.events, cev = g.consumer.events, pev = g.producer.events
        let port = g.recvTransport.tuple.localPort
        g.worker.close()
        #expect(names(await collect(wev)) == [])
        #expect(names(await collect(wob)) == ["close"])
        #expect(names(await collect(rev)) == ["workerClose"])
        #expect(names(await collect(tev)) == ["routerClose"])
        #expect(names(await collect(pev)) == ["transportClose"])
        #expect(names(await collect(cev)) == ["transportClose"])
        await g.worker.waitForShutdown()
        #expect(await portIsFree(port))
        #expect(throws: SFUError.invalidState("Worker closed")) { _ = try g.worker.createRouter(mediaCodecs: []) }
    }

    @Test func workerDied() async throws {
        let g = try await makeGraph()
        let wev = g.worker.events, wob = g.worker.observer, rev = g.router.events, cev = g.consumer.events
        let port = g.sendTransport.tuple.localPort
        g.worker.simulateFatalError()
        let died = await collect(wev)
        #expect(names(died) == ["died"])
        #expect(names(await collect(wob)) == ["close"])
        #expect(names(await collect(rev)) == ["workerClose"])
        #expect(names(await collect(cev)) == ["transportClose"])
        #expect(g.worker.died && g.worker.closed)
        #expect(await portIsFree(port))
    }

    @Test func observerNewEntities() async throws {
        let worker = try await testWorker()
        let wob = worker.observer
        let router = try worker.createRouter(mediaCodecs: [opus])
        let rob = router.observer
        let t = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        let tob = t.observer
        let p = try t.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 99)))
        let c = try t.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: router.rtpCapabilities))
        let pob = p.observer, cob = c.observer
        try p.pause(); try p.pause(); try p.resume()
        try c.pause(); try c.resume()
        worker.close()
        #expect(names(await collect(wob)) == ["newRouter", "close"])
        #expect(names(await collect(rob)) == ["newTransport", "close"])
        #expect(names(await collect(tob)) == ["newProducer", "newConsumer", "close"])
        #expect(names(await collect(pob)) == ["pause", "resume", "close"])
        #expect(names(await collect(cob)) == ["pause", "resume", "pause", "resume", "close"])
    }

    @Test func producerPauseNotifiesConsumers() async throws {
        let g = try await makeGraph()
        let cev = g.consumer.events
        try g.producer.pause()
        #expect(g.consumer.producerPaused)
        try g.producer.resume()
        g.consumer.close()
        #expect(names(await collect(cev)) == ["producerPause", "producerResume"])
        g.worker.close()
    }
}
