import RingSFUCShims

/// Congestion feedback to publishers' endpoints, so their send-side
/// estimators can grow: transport-wide CC feedback (every packet's arrival
/// time, every 100 ms or sooner at high rates) where the endpoint
/// negotiated it, else a receive-side estimate as REMB once a second.
/// The transports that give feedback are listed for one worker timer.
extension ForwarderLoop {
    static let feedbackIntervalNs: Int64 = 100_000_000
    /// Feedback packets stay within this size (the MTU our RTCP keeps to).
    static let feedbackMtu = 1200

    /// A producer's negotiation decides the transport's feedback, as in
    /// mediasoup: transport-wide CC wins over REMB, and stays once chosen.
    mutating func enableFeedback(transport t: Int, _ spec: ProducerSpec) {
        if spec.transportCcExtensionId != 0 {
            transports[t].transportCcExtensionId = spec.transportCcExtensionId
            if transports[t].transportCc < 0 {
                let r = freeTransportCc.pop()
                guard r >= 0 else { counters.dropTransportCcUnavailable &+= 1; return }
                transportCcRecorders[Int(r)] = TransportCcRecorder(ring: transportCcRings.slot(Int(r)).assumingMemoryBound(to: UInt64.self))
                transports[t].transportCc = r
            }
            transports[t].remb.enabled = false
        } else if spec.remb, transports[t].transportCc < 0 {
            transports[t].remb.enabled = true
        } else {
            return
        }
        if !transports[t].feedbackListed {
            transports[t].feedbackListed = true
            feedbackTransports[feedbackTransportCount] = Int32(t)
            feedbackTransportCount += 1
        }
        if !feedbackTimerArmed {
            feedbackTimerArmed = true
            timers.schedule(.init(kind: TimerKind.feedback.rawValue, argument: 0), at: rsfu_monotonic_ns() + Self.feedbackIntervalNs)
        }
    }

    /// Called when a transport closes (before its row is cleared).
    mutating func disableFeedback(transport t: Int) {
        if transports[t].transportCc >= 0 { freeTransportCc.push(transports[t].transportCc) }
        guard transports[t].feedbackListed else { return }
        for i in 0..<feedbackTransportCount where feedbackTransports[i] == Int32(t) {
            feedbackTransportCount -= 1
            feedbackTransports[i] = feedbackTransports[feedbackTransportCount]
            break
        }
    }

    /// Per packet, before routing (probes and packets of unknown streams
    /// are acknowledged too: the sender's estimator counts them).
    @inline(__always)
    mutating func recordTransportCc(_ packet: UnsafeMutableRawPointer, _ header: RtpHeader, transport t: Int) {
        let id = transports[t].transportCcExtensionId
        var sequence: Int32 = -1
        try? RtpHeaderExtensions.forEach(packet, header) { extId, offset, length in
            if extId == id, length >= 2 { sequence = Int32(readUInt16(packet, offset)) }
        }
        guard sequence >= 0 else { return }
        let r = Int(transports[t].transportCc)
        transportCcRecorders[r].record(sequence: UInt16(sequence), arrivalNs: turnNs)
        transportCcRecorders[r].mediaSsrc = header.ssrc
        if transportCcRecorders[r].pending >= TransportCcRecorder.eagerThreshold { sendTransportCcFeedback(transport: t) }
    }

    /// Everything unreported, in as many packets as it takes (bounded).
    mutating func sendTransportCcFeedback(transport t: Int) {
        let r = Int(transports[t].transportCc)
        guard r >= 0 else { return }
        for _ in 0..<8 {
            let slot = freeSendSlots.pop()
            guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
            let n = transportCcRecorders[r].writeFeedback(sendSlab.slot(Int(slot)), capacity: Self.feedbackMtu, senderSsrc: Self.feedbackSenderSsrc)
            guard n > 0 else { freeSendSlots.push(slot); return }
            counters.transportCcFeedback &+= 1
            sendRtcp(transport: t, slot: slot, length: n)
        }
    }

    mutating func feedbackTimerFired() {
        feedbackTimerArmed = false
        let now = rsfu_monotonic_ns()
        for i in 0..<feedbackTransportCount {
            let t = Int(feedbackTransports[i])
            guard transports[t].inUse else { continue }
            if transports[t].transportCc >= 0 {
                sendTransportCcFeedback(transport: t)
            } else if transports[t].remb.enabled {
                let cap = UInt64(transports[t].incomingLimit.cap)
                guard let bitrate = transports[t].remb.update(bytesReceived: transports[t].counters.bytes, fractionLost: worstFractionLost(transport: t),
                                                              cap: cap, nowNs: now) else { continue }
                sendEstimateRemb(transport: t, bitrate: bitrate)
            }
        }
        if feedbackTransportCount > 0 {
            feedbackTimerArmed = true
            timers.schedule(.init(kind: TimerKind.feedback.rawValue, argument: 0), at: now + Self.feedbackIntervalNs)
        }
    }

    /// The highest loss of the transport's incoming streams in their last
    /// report interval.
    func worstFractionLost(transport t: Int) -> UInt8 {
        var worst: UInt8 = 0
        var p = transports[t].firstProducer
        while p >= 0 {
            let h = Int(p)
            for layer in 0..<producers[h].layerCount where producers[h].streams[layer] >= 0 {
                worst = max(worst, receiveStreams[Int(producers[h].streams[layer])].lastFractionLost)
            }
            p = producerCold[h].nextInTransport
        }
        return worst
    }

    /// A REMB naming the media SSRCs the endpoint sends us.
    mutating func sendEstimateRemb(transport t: Int, bitrate: UInt64) {
        var ssrcs = InlineArray<16, UInt32>(repeating: 0)
        var count = 0
        var p = transports[t].firstProducer
        while p >= 0, count < 16 {
            let h = Int(p)
            for layer in 0..<producers[h].layerCount where producers[h].ssrcs[layer] != 0 && count < 16 {
                ssrcs[count] = producers[h].ssrcs[layer]
                count += 1
            }
            p = producerCold[h].nextInTransport
        }
        let slot = freeSendSlots.pop()
        guard slot >= 0 else { counters.dropSendPoolEmpty &+= 1; return }
        let n = RtcpWriter.remb(sendSlab.slot(Int(slot)), capacity: settings.bufferSize, sender: Self.feedbackSenderSsrc,
                                bitrate: bitrate, ssrcCount: count) { ssrcs[$0] }
        counters.rembSent &+= 1
        sendRtcp(transport: t, slot: slot, length: n)
    }
}
