import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// Rows of the forwarder's tables are reused; the handle's generation keeps
/// an event still in flight for a closed entity away from the entity that
/// took its row next.
@Suite("Handle generations") @RingSFUActor
struct HandleGenerationTests {
    @Test func handleSpaceReusesOldestWithNextGeneration() throws {
        let space = HandleSpace(capacity: 3)
        let a = try #require(space.allocate()), b = try #require(space.allocate()), c = try #require(space.allocate())
        #expect(a.index == 0 && b.index == 1 && c.index == 2)
        #expect(space.allocate() == nil)
        space.release(b)
        space.release(a)
        space.release(a) // a second release is ignored
        let d = try #require(space.allocate()), e = try #require(space.allocate())
        #expect(d.index == 1 && d.generation == b.generation + 1, "the oldest freed row first")
        #expect(e.index == 0 && e.generation == a.generation + 1)
        #expect(space.allocate() == nil, "the ignored double release gave nothing back")
        space.release(b) // stale: row 1 now belongs to d
        #expect(space.allocate() == nil)
        #expect(d != b && Handle(raw: d.raw) == d)
    }

    @Test func generationsWrapWithinTheirBits() throws {
        let space = HandleSpace(capacity: 1)
        var last = try #require(space.allocate())
        for _ in 0..<5000 {
            space.release(last)
            let next = try #require(space.allocate())
            #expect(next.index == 0 && next != last)
            last = next
        }
    }

    /// A comedia transport learns its tuple from a packet; the event is
    /// still queued when the transport closes and a new one takes its row.
    /// The new transport must not learn the old one's tuple.
    @Test func eventForAClosedTransportDoesNotReachItsSuccessor() async throws {
        let worker = try await Worker.create(WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 2, maxProducers: 4, maxConsumers: 4))
        let router = try worker.createRouter(mediaCodecs: [opus])
        // The router owns no transport row; two transport rows: fill one so
        // the closed transport's row is the only one free.
        let keeper = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
        for round in 0..<5 {
            let old = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
            await worker.sync()
            let sender = TestSocket()
            sender.send(makeRtp(pt: 111, seq: 1, ssrc: 7), to: UInt16(old.tuple.localPort))
            // Give the forwarder time to take the packet and queue the event
            // without letting this actor run (so the event waits).
            usleep(100_000)
            old.close()
            let successor = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
            #expect(successor.handle.index == old.handle.index && successor.handle != old.handle, "round \(round): the row is reused")
            await worker.sync()
            try await Task.sleep(for: .milliseconds(50))
            #expect(successor.tuple.remotePort == nil, "round \(round): the old transport's tuple reached its successor")
            successor.close()
        }
        keeper.close()
        worker.close()
    }

    /// Every way an entity closes takes it out of the worker's lookups: a
    /// closed router used to leave its producers (and data producers)
    /// findable by id for the worker's lifetime.
    @Test func closingLeavesNothingRegistered() async throws {
        let worker = try await testWorker()
        for how in 0..<3 {
            let router = try worker.createRouter(mediaCodecs: [opus])
            let a = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
            let b = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback))
            let p = try a.produce(ProducerOptions(kind: .audio, rtpParameters: audioParams(ssrc: 77)))
            _ = try b.consume(ConsumerOptions(producerId: p.id, rtpCapabilities: router.rtpCapabilities))
            let direct = try router.createDirectTransport(DirectTransportOptions())
            let dp = try direct.produceData(DataProducerOptions())
            _ = try direct.consumeData(DataConsumerOptions(dataProducerId: dp.id))
            #expect(worker.registry.producersById[p.id] != nil && worker.registry.dataProducersById[dp.id] != nil)
            switch how {
            case 0: router.close()
            case 1: a.close(); b.close(); direct.close(); router.close()
            default: p.close(); dp.close(); router.close()
            }
            let r = worker.registry
            #expect(r.transportsById.isEmpty && r.transportsByHandle.isEmpty, "case \(how)")
            #expect(r.producersById.isEmpty && r.producersByHandle.isEmpty, "case \(how)")
            #expect(r.consumersById.isEmpty && r.consumersByHandle.isEmpty, "case \(how)")
            #expect(r.dataProducersById.isEmpty && r.dataConsumersById.isEmpty, "case \(how)")
            #expect(worker.entityCount == 0, "case \(how)")
        }
        worker.close()
    }
}
