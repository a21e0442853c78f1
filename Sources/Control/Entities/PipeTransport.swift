import Foundation
import RingSFUForwarder

/// One end of an in-process pipe created by `router.pipeToRouter`: packets
/// cross to the peer router's worker through a ring in memory (no socket,
/// no SRTP). Closing either end closes the other.
@RingSFUActor
public final class PipeTransport: Transport {
    weak var peer: PipeTransport?

    static func makePair(_ a: Router, _ b: Router) throws(SFUError) -> (PipeTransport, PipeTransport) {
        guard let wa = a.worker, let wb = b.worker else { throw .invalidState("Router closed") }
        let linkAB = try wa.pipeLink(to: wb)
        let linkBA = try wb.pipeLink(to: wa)
        guard let ha = wa.forwarder.transportHandles.allocate() else { throw .failure("too many transports in this worker") }
        guard let hb = wb.forwarder.transportHandles.allocate() else {
            wa.forwarder.transportHandles.release(ha)
            throw .failure("too many transports in this worker")
        }
        wa.forwarder.send(.addPipeTransport(handle: ha, router: a.handle, link: linkAB, peer: hb))
        wb.forwarder.send(.addPipeTransport(handle: hb, router: b.handle, link: linkBA, peer: ha))
        let ta = PipeTransport(router: a, worker: wa, handle: ha, appData: [:])
        let tb = PipeTransport(router: b, worker: wb, handle: hb, appData: [:])
        ta.peer = tb
        tb.peer = ta
        return (ta, tb)
    }

    override var statsType: String { "pipe-transport" }

    /// Either end closing closes the other, and the routers forget the pair.
    override func didClose() {
        router?.pipePairClosed(self)
        if let peer, !peer.closed { peer.close() }
    }
}
