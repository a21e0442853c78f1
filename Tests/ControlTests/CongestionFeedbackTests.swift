import Testing
import Foundation
import RingSFUTestSupport
@testable import RingSFU
@testable import RingSFUForwarder

/// Congestion feedback to a publisher over real UDP: transport-wide CC
/// feedback acknowledging every packet's transport-wide sequence number
/// (lost ones reported as not received), or, with only goog-remb
/// negotiated, a REMB estimate once a second under the transport's cap.
@Suite("Congestion feedback") @RingSFUActor
struct CongestionFeedbackTests {
    static let twccUri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

    func params(ssrc: UInt32, feedback: [RtcpFeedback], twccId: Int? = nil) -> RtpParameters {
        var p = videoParams(ssrc: ssrc, exts: twccId.map { [RtpHeaderExtensionParameters(uri: Self.twccUri, id: $0)] } ?? [])
        p.codecs[0].rtcpFeedback = feedback
        return p
    }

    /// Reads RTCP from the socket for `seconds`, handing each packet to `body`.
    func readRtcp(_ s: TestSocket, seconds: Double, until done: () -> Bool = { false }, _ body: (RtcpView) -> Void) async {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            await Task.yield()
            while let d = await s.receive(timeoutMs: 10) {
                d.withUnsafeBytes { raw in try? Rtcp.forEach(raw.baseAddress!, count: raw.count) { body($0) } }
            }
        } while Date() < deadline && !done()
    }

    @Test func everyPacketIsAcknowledged() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        _ = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: params(ssrc: 7200, feedback: [RtcpFeedback(type: "transport-cc", parameter: "")], twccId: 3)))
        await worker.sync()
        let feeder = TestSocket()
        feeder.acceptsRtcp = true
        let port = UInt16(ingress.tuple.localPort)
        // 60 packets with transport-wide numbers from 65500 (wrapping), 2 lost on
        // the way; one is a probe on an SSRC no producer has (still acknowledged).
        var sent: [UInt16] = []
        for i in 0..<60 {
            let wide = UInt16(truncatingIfNeeded: 65500 + i)
            sent.append(wide)
            if i == 20 || i == 21 { continue }
            let ssrc: UInt32 = i == 40 ? 999 : 7200
            feeder.send(makeRtp(pt: 96, seq: UInt16(i), ts: UInt32(i) * 3000, ssrc: ssrc, payload: vp8Payload(keyFrame: i == 0),
                                extensions: [(3, [UInt8(wide >> 8), UInt8(wide & 0xFF)])]), to: port)
            if i % 10 == 9 { try await Task.sleep(for: .milliseconds(20)) }
        }
        var status: [UInt16: Bool] = [:]
        var feedbackPackets = 0
        var counts: [UInt8] = []
        await readRtcp(feeder, seconds: 3, until: { status.count >= 60 && status.values.filter { $0 }.count >= 58 }) { v in
            guard v.type == RtcpType.rtpfb, v.count == RtcpFormat.transportCc else { return }
            feedbackPackets += 1
            if let h = try? Rtcp.forEachTransportCcPacket(v, { seq, delta in status[seq] = (status[seq] ?? false) || delta != nil }) {
                counts.append(h.feedbackCount)
            }
        }
        #expect(feedbackPackets >= 1)
        #expect(Set(status.keys) == Set(sent))
        #expect(status.filter { !$0.value }.keys.sorted() == [sent[20], sent[21]])
        // Feedback packet counts go up by one.
        #expect(counts == (0..<counts.count).map { UInt8($0) })
        let (counters, _) = await worker.forwarder.counters()
        #expect(counters.transportCcFeedback >= 1)
        worker.close()
    }

    @Test func rembEstimateWithoutTransportCc() async throws {
        let worker = try await testWorker()
        let router = try worker.createRouter(mediaCodecs: [vp8])
        let ingress = try router.createPlainTransport(PlainTransportOptions(listenInfo: loopback, comedia: true))
        _ = try ingress.produce(ProducerOptions(kind: .video, rtpParameters: params(ssrc: 7300, feedback: [RtcpFeedback(type: "goog-remb", parameter: "")])))
        await worker.sync()
        let feeder = TestSocket()
        feeder.acceptsRtcp = true
        let port = UInt16(ingress.tuple.localPort)
        var rembs: [(UInt64, [UInt32])] = []
        var seq: UInt16 = 0
        var bytesSent = 0
        func sendBurst() {
            // About 1 Mbps when the test is scheduled on time: 10 packets of 1200 bytes every 100 ms.
            for _ in 0..<10 {
                feeder.send(makeRtp(pt: 96, seq: seq, ts: UInt32(seq) * 300, ssrc: 7300, payload: vp8Payload(keyFrame: seq == 0, size: 1188)), to: port)
                seq &+= 1
                bytesSent += 1200
            }
        }
        let start = Date()
        while Date().timeIntervalSince(start) < 3.5 {
            sendBurst()
            await readRtcp(feeder, seconds: 0.1) { v in
                guard v.type == RtcpType.psfb, v.count == RtcpFormat.afb else { return }
                var ssrcs: [UInt32] = []
                if let b = try? Rtcp.remb(v, { ssrcs.append($0) }) { rembs.append((b, ssrcs)) }
            }
        }
        // A REMB a second, naming the stream, with headroom over what
        // arrives (1.5 x the last second's rate + 150 kbps; that second's rate
        // is taken as within half to twice the run's average).
        let average = UInt64(Double(bytesSent * 8) / Date().timeIntervalSince(start))
        #expect(rembs.count >= 2 && rembs.count <= 4, "\(rembs)")
        let last = try #require(rembs.last)
        #expect(last.1 == [7300])
        #expect(last.0 > average * 3 / 4 + RembEstimator.headroom && last.0 < average * 3 + RembEstimator.headroom, "\(last.0) at \(average) bps")
        // The transport's cap bounds the estimate.
        try ingress.setMaxIncomingBitrate(400_000)
        rembs.removeAll()
        let capped = Date()
        while Date().timeIntervalSince(capped) < 2.5 {
            sendBurst()
            await readRtcp(feeder, seconds: 0.1) { v in
                guard v.type == RtcpType.psfb, v.count == RtcpFormat.afb else { return }
                if let b = try? Rtcp.remb(v, { _ in }) { rembs.append((b, [])) }
            }
        }
        #expect(!rembs.isEmpty && rembs.allSatisfy { $0.0 <= 400_000 }, "\(rembs)")
        worker.close()
    }

    @Test func rembEstimatorOnSimulatedTime() {
        var e = RembEstimator()
        e.enabled = true
        let s: Int64 = 1_000_000_000
        #expect(e.update(bytesReceived: 0, fractionLost: 0, cap: 0, nowNs: s) == nil) // baseline
        #expect(e.update(bytesReceived: 50_000, fractionLost: 0, cap: 0, nowNs: s + s / 2) == nil) // not a second yet
        // 1 Mbps arrived over the second: offered 1.5x plus headroom.
        #expect(e.update(bytesReceived: 125_000, fractionLost: 0, cap: 0, nowNs: 2 * s) == 1_650_000)
        // Moderate loss holds the estimate rather than raising it.
        #expect(e.update(bytesReceived: 375_000, fractionLost: 12, cap: 0, nowNs: 3 * s) == 1_650_000)
        // Heavy loss (25 %) backs off below what arrived (2 Mbps).
        #expect(e.update(bytesReceived: 625_000, fractionLost: 64, cap: 0, nowNs: 4 * s) == 1_750_000)
        // Nothing arriving: the floor, and never above the cap.
        #expect(e.update(bytesReceived: 625_000, fractionLost: 0, cap: 0, nowNs: 5 * s) == RembEstimator.headroom)
        #expect(e.update(bytesReceived: 1_625_000, fractionLost: 0, cap: 300_000, nowNs: 6 * s) == 300_000)
        var off = RembEstimator()
        #expect(off.update(bytesReceived: 1, fractionLost: 0, cap: 0, nowNs: s) == nil)
    }
}
