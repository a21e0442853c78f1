import Testing
@testable import RingSFUForwarder

/// Key frame request coalescing and retry on simulated time.
@Suite("Key frame requester")
struct KeyFrameRequesterTests {
    static let ms: Int64 = 1_000_000

    @Test func coalescesWhileOutstanding() {
        var r = KeyFrameRequester()
        #expect(r.request(nowNs: 100 * Self.ms) == .send(retryAtNs: 1100 * Self.ms))
        // Ten more consumers ask within the second: one request on the wire.
        for t in stride(from: Int64(110), to: 1000, by: 90) { #expect(r.request(nowNs: t * Self.ms) == .none) }
        #expect(r.pending)
    }

    @Test func retriesOnceThenGivesUp() {
        var r = KeyFrameRequester()
        _ = r.request(nowNs: 0)
        #expect(r.retryDue(nowNs: 1000 * Self.ms) == .send(retryAtNs: 2000 * Self.ms))
        #expect(r.request(nowNs: 1500 * Self.ms) == .none, "the retry is outstanding")
        #expect(r.retryDue(nowNs: 2000 * Self.ms) == .none)
        #expect(!r.pending, "given up after one retry")
        // A new need starts over.
        #expect(r.request(nowNs: 2100 * Self.ms) == .send(retryAtNs: 3100 * Self.ms))
    }

    @Test func aKeyFrameEndsTheRequest() {
        var r = KeyFrameRequester()
        _ = r.request(nowNs: 0)
        let answered = r.keyFrameArrived()
        let again = r.keyFrameArrived()
        #expect(answered)
        #expect(!again, "nothing outstanding any more")
        #expect(r.retryDue(nowNs: 1000 * Self.ms) == .none, "its timer finds nothing to retry")
        #expect(r.request(nowNs: 10 * Self.ms) == .send(retryAtNs: 1010 * Self.ms))
    }

    @Test func aStaleTimerDoesNothing() {
        var r = KeyFrameRequester()
        _ = r.request(nowNs: 0)
        _ = r.keyFrameArrived()
        _ = r.request(nowNs: 600 * Self.ms) // a new request, its own timer at 1600
        #expect(r.retryDue(nowNs: 1000 * Self.ms) == .none, "the first request's timer")
        #expect(r.retryDue(nowNs: 1600 * Self.ms) == .send(retryAtNs: 2600 * Self.ms))
    }

    @Test func aLostTimerDoesNotBlockForever() {
        var r = KeyFrameRequester()
        _ = r.request(nowNs: 0)
        // No retry ever fired: after three retry periods a request goes out again.
        #expect(r.request(nowNs: 2900 * Self.ms) == .none)
        #expect(r.request(nowNs: 3000 * Self.ms) == .send(retryAtNs: 4000 * Self.ms))
    }
}
