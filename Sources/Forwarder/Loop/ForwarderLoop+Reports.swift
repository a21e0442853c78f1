import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// RTCP reports, every 1 to 1.5 s per worker: to each transport's endpoint
/// an RR with a report block per producer stream it sends us, and an SR
/// plus SDES CNAME per consumer stream we send it, packed into compound
/// packets of at most 1200 bytes. Received SRs give the producers' NTP/RTP
/// mapping (used in consumers' SRs, which keeps audio/video sync across the
/// SFU) and receivers' RRs give consumers' loss, jitter, RTT and score.
extension ForwarderLoop {
    static let reportMtu = 1200

    mutating func ensureReportTimer() {
        guard !reportTimerArmed else { return }
        reportTimerArmed = true
        if lastReportNs == 0 { lastReportNs = rsfu_monotonic_ns() }
        let delay = RtcpReporter.nextDelayNs(random: random.next())
        timers.schedule(.init(kind: TimerKind.reports.rawValue, argument: 0), at: rsfu_monotonic_ns() + delay)
    }

    mutating func reportTimerFired() {
        reportTimerArmed = false
        let now = rsfu_monotonic_ns()
        let interval = max(1, now - lastReportNs)
        lastReportNs = now
        let ntp = rsfu_ntp_now()
        var any = false
        for t in 0..<Int(settings.maxTransports) where transports[t].inUse {
            guard transports[t].firstProducer >= 0 || transports[t].firstConsumer >= 0 else { continue }
            any = true
            updateScoresAndRates(transport: t, intervalNs: interval)
            guard !transports[t].direct, transports[t].pipeLink < 0 else { continue }
            sendReports(transport: t, nowNs: now, ntp: ntp)
        }
        if any { ensureReportTimer() }
    }

    /// Producer scores from this interval's loss (after repair), consumer
    /// bitrates; events for scores that changed.
    mutating func updateScoresAndRates(transport t: Int, intervalNs: Int64) {
        transports[t].counters.bitrate = Self.bitrate(transports[t].counters.bytes, since: &transports[t].bytesAtLastReport, intervalNs)
        transports[t].counters.sendBitrate = Self.bitrate(transports[t].counters.bytesOut, since: &transports[t].bytesOutAtLastReport, intervalNs)
        var p = transports[t].firstProducer
        while p >= 0 {
            let h = Int(p)
            producers[h].counters.bitrate = Self.bitrate(producers[h].counters.bytes, since: &producerCold[h].bytesAtLastReport, intervalNs)
            for layer in 0..<producers[h].layerCount where producers[h].streams[layer] >= 0 {
                let s = Int(producers[h].streams[layer])
                receiveStreams[s].bitrate = Self.bitrate(receiveStreams[s].bytes, since: &receiveStreams[s].bytesAtLastReport, intervalNs)
            }
            for layer in 0..<Int(producers[h].svcSpatialLayers) where producers[h].svcSpatialLayers > 1 {
                producerCold[h].svcBitrates[layer] = Self.bitrate(producerCold[h].svcBytes[layer], since: &producerCold[h].svcBytesAtLastReport[layer], intervalNs)
            }
            p = producerCold[h].nextInTransport
        }
        var c = transports[t].firstConsumer
        while c >= 0 {
            let h = Int(c)
            consumers[h].counters.bitrate = Self.bitrate(consumers[h].counters.bytesOut, since: &consumerCold[h].bytesAtLastReport, intervalNs)
            // A layer that stopped (or came back) moves simulcast targets.
            if consumers[h].simulcast { updateTargetLayer(h) }
            c = consumerCold[h].nextInTransport
        }
    }

    /// Bits per second since the last report, which `last` remembers.
    static func bitrate(_ bytes: UInt64, since last: inout UInt64, _ intervalNs: Int64) -> UInt64 {
        let delta = bytes &- last
        last = bytes
        return delta &* 8_000 / UInt64(max(1, intervalNs / 1_000_000))
    }

    mutating func setProducerScore(_ p: Int, layer: Int, _ score: UInt8) {
        guard producerCold[p].scores[layer] != score else { return }
        producerCold[p].scores[layer] = score
        worker.onEvent(.producerScore(producer: producerCold[p].handle, layer: layer, score))
        var c = producers[p].firstConsumer
        while c >= 0 {
            let h = Int(c)
            if consumerLayer(h) == layer {
                worker.onEvent(.consumerScore(consumer: consumerCold[h].handle, score: consumerCold[h].score, producerScore: score))
            }
            c = consumers[h].nextInProducer
        }
    }

    /// The producer layer whose figures describe what a consumer receives.
    func consumerLayer(_ c: Int) -> Int {
        consumers[c].simulcast ? max(0, consumers[c].layers.current) : 0
    }

    mutating func sendReports(transport t: Int, nowNs: Int64, ntp: UInt64) {
        var slot = freeSendSlots.pop()
        guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
        var out = sendSlab.slot(Int(slot))
        var used = 0
        // Receiver report blocks for the streams this endpoint sends us.
        var blocks = InlineArray<31, Rtcp.ReportBlock>(repeating: Rtcp.ReportBlock(ssrc: 0))
        var blockCount = 0
        var p = transports[t].firstProducer
        var layer = 0
        while p >= 0 {
            let h = Int(p)
            let s = Int(producers[h].streams[layer])
            // Next (producer, layer).
            layer += 1
            if layer >= producers[h].layerCount { layer = 0; p = producerCold[h].nextInTransport }
            guard s >= 0, producers[h].ssrcs[receiveStreams[s].layer] != 0, receiveStreams[s].started else { continue }
            let block = RtcpReporter.receiverBlock(&receiveStreams[s], ssrc: producers[h].ssrcs[receiveStreams[s].layer], nowNs: nowNs)
            setProducerScore(h, layer: receiveStreams[s].layer, RtcpReporter.score(fractionLost: block.fractionLost))
            blocks[blockCount] = block
            blockCount += 1
            if blockCount == 31 {
                used += RtcpWriter.receiverReport(out + used, capacity: Self.reportMtu - used, ssrc: Self.feedbackSenderSsrc, blockCount: blockCount) { blocks[$0] }
                counters.receiverReports &+= 1
                blockCount = 0
                if used > Self.reportMtu - 24 * 31 - 8 {
                    sendRtcp(transport: t, slot: slot, length: used)
                    slot = freeSendSlots.pop()
                    guard slot >= 0 else { return }
                    out = sendSlab.slot(Int(slot))
                    used = 0
                }
            }
        }
        if blockCount > 0 {
            used += RtcpWriter.receiverReport(out + used, capacity: Self.reportMtu - used, ssrc: Self.feedbackSenderSsrc, blockCount: blockCount) { blocks[$0] }
            counters.receiverReports &+= 1
        }
        // A sender report and CNAME for each stream we send it.
        var c = transports[t].firstConsumer
        while c >= 0 {
            let h = Int(c)
            c = consumerCold[h].nextInTransport
            guard consumers[h].rtp.started, let info = senderInfo(consumer: h, nowNs: nowNs, ntp: ntp) else { continue }
            let need = 28 + 8 + 2 + consumerCold[h].cnameLength + 4
            if used + need > Self.reportMtu {
                sendRtcp(transport: t, slot: slot, length: used)
                slot = freeSendSlots.pop()
                guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
                out = sendSlab.slot(Int(slot))
                used = 0
            }
            used += RtcpWriter.senderReport(out + used, capacity: Self.reportMtu - used, info)
            withUnsafeBytes(of: consumerCold[h].cname) { raw in
                used += RtcpWriter.sdesCname(out + used, capacity: Self.reportMtu - used, ssrc: info.ssrc, cname: UnsafeRawBufferPointer(rebasing: raw[0..<consumerCold[h].cnameLength]))
            }
            consumerCold[h].previousSrNtpMiddle = consumerCold[h].lastSrNtpMiddle
            consumerCold[h].previousSrSentNs = consumerCold[h].lastSrSentNs
            consumerCold[h].lastSrNtpMiddle = UInt32(truncatingIfNeeded: (UInt64(info.ntpSeconds) << 32 | UInt64(info.ntpFraction)) >> 16)
            consumerCold[h].lastSrSentNs = nowNs
            counters.senderReports &+= 1
            traceConsumer(h, .sr, incoming: false) { $0.timestamp = info.rtpTimestamp; $0.count = Int(info.packetCount) }
        }
        if used > 0 { sendRtcp(transport: t, slot: slot, length: used) } else { freeSendSlots.push(slot) }
    }

    /// The consumer's SR: the producer's NTP/RTP mapping (from its last SR)
    /// carried forward to now, in the consumer's timestamp space; without a
    /// producer SR, wall clock against the newest packet's timestamp.
    func senderInfo(consumer c: Int, nowNs: Int64, ntp: UInt64) -> Rtcp.SenderInfo? {
        let p = Int(consumers[c].producer)
        let s = Int(producers[p].streams[consumerLayer(c)])
        guard s >= 0 else { return nil }
        guard let (ntpNow, rtp) = RtcpReporter.clock(of: receiveStreams[s], nowNs: nowNs, ntpNow: ntp) else { return nil }
        return Rtcp.SenderInfo(ssrc: consumers[c].ssrc, ntpSeconds: UInt32(truncatingIfNeeded: ntpNow >> 32), ntpFraction: UInt32(truncatingIfNeeded: ntpNow),
                               rtpTimestamp: consumers[c].rtp.timestamp(for: rtp), packetCount: UInt32(truncatingIfNeeded: consumers[c].counters.packetsOut),
                               octetCount: UInt32(truncatingIfNeeded: consumers[c].counters.bytesOut))
    }

    // MARK: - Reports received

    /// An SR from a producer's endpoint: its NTP/RTP mapping.
    mutating func senderReportReceived(_ info: Rtcp.SenderInfo, transport t: Int) {
        guard let h = ssrcTable.lookup(transport: UInt32(t), ssrc: info.ssrc), h & Self.rtxFlag == 0 else { return }
        let p = Int(h & Self.handleMask)
        let s = Int(producers[p].streams[Int((h >> Self.layerShift) & 0x7)])
        guard s >= 0 else { return }
        receiveStreams[s].srNtp = UInt64(info.ntpSeconds) << 32 | UInt64(info.ntpFraction)
        receiveStreams[s].srRtp = info.rtpTimestamp
        receiveStreams[s].srArrivalNs = rsfu_monotonic_ns()
        traceProducer(p, .sr, incoming: true) { $0.timestamp = info.rtpTimestamp; $0.count = Int(info.packetCount) }
    }

    /// A report block from a consumer's endpoint: loss, jitter, RTT, score.
    mutating func reportBlockReceived(_ block: Rtcp.ReportBlock, transport t: Int) {
        guard let (c, _) = consumer(transport: t, ssrc: block.ssrc) else { return }
        consumerCold[c].remoteFractionLost = block.fractionLost
        consumerCold[c].remoteLost = block.totalLost
        consumerCold[c].remoteJitter = block.jitter
        let now = rsfu_monotonic_ns()
        if let rtt = RtcpReporter.roundTripNs(block, lastSrNtpMiddle: consumerCold[c].lastSrNtpMiddle, srSentNs: consumerCold[c].lastSrSentNs, nowNs: now)
            ?? RtcpReporter.roundTripNs(block, lastSrNtpMiddle: consumerCold[c].previousSrNtpMiddle, srSentNs: consumerCold[c].previousSrSentNs, nowNs: now) {
            consumerCold[c].rttNs = rtt
        }
        let score = RtcpReporter.score(fractionLost: block.fractionLost)
        if score != consumerCold[c].score {
            consumerCold[c].score = score
            worker.onEvent(.consumerScore(consumer: consumerCold[c].handle, score: score, producerScore: producerCold[Int(consumers[c].producer)].scores[consumerLayer(c)]))
        }
    }
}
