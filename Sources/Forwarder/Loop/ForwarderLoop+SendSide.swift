/// Send-side estimation per WebRTC transport: what goes out carries the
/// transport's own transport-wide sequence number (where the endpoint
/// negotiated the extension and the packet has the element), is remembered
/// in the transport's send history, and the endpoint's transport-wide
/// feedback drives the transport's estimator (doc/bwe.md). The estimate is
/// the transport's `availableOutgoingBitrate`.
extension ForwarderLoop {
    /// A consumer negotiated the extension: its transport numbers what it
    /// sends and estimates from the endpoint's feedback (WebRTC and plain
    /// transports, as mediasoup; not pipes, whose far side is a router).
    mutating func enableSendSide(transport t: Int, extensionId: UInt8) {
        guard !transports[t].direct, transports[t].pipeLink < 0, extensionId != 0 else { return }
        transports[t].sendSideExtensionId = extensionId
        guard transports[t].sendSide < 0 else { return }
        let i = freeSendSide.pop()
        guard i >= 0 else { counters.dropTransportCcUnavailable &+= 1; return }
        sendHistories[Int(i)] = SendHistory(memory: sendHistoryRings.slot(Int(i)))
        sendSideEstimators[Int(i)] = SendSideEstimator()
        sendSideControls[Int(i)] = SendSideControl()
        transports[t].sendSide = i
        applyOutgoingBounds(transport: t)
    }

    /// The application's bounds, onto the transport's estimator.
    mutating func applyOutgoingBounds(transport t: Int) {
        guard transports[t].sendSide >= 0 else { return }
        let min = transports[t].outgoingMin == 0 ? SendSideEstimator.defaultMin : Int(transports[t].outgoingMin)
        let max = transports[t].outgoingMax == 0 ? SendSideEstimator.defaultMax : Int(transports[t].outgoingMax)
        sendSideEstimators[Int(transports[t].sendSide)].setBounds(min: min, max: max)
        sendSideControls[Int(transports[t].sendSide)].probes.maxBitrate = sendSideEstimators[Int(transports[t].sendSide)].delayBased.maxBitrate
    }

    /// Called when a transport closes (before its row is cleared).
    mutating func disableSendSide(transport t: Int) {
        if transports[t].sendSide >= 0 { freeSendSide.push(transports[t].sendSide) }
        transports[t].sendSide = -1
    }

    /// Writes the transport's next sequence number into the packet's
    /// transport-wide element (at `offset`, found by the id rewrite) and
    /// remembers the packet. A packet without the element (a publisher that
    /// did not negotiate it) goes out unnumbered.
    @inline(__always)
    mutating func numberTransportWide(_ out: UnsafeMutableRawPointer, at offset: Int, transport t: Int, size: Int) {
        let sequence = sendHistories[Int(transports[t].sendSide)].record(sendNs: turnNs, bytes: size)
        writeUInt16(out, offset, sequence)
    }

    /// Transport-wide feedback from the transport's endpoint: every
    /// reported packet that is still in the history goes to the estimator.
    mutating func sendSideFeedback(_ v: RtcpView, transport t: Int) throws(RtcpError) {
        let i = Int(transports[t].sendSide)
        // Arrival times: the reference time (64 ms units), then each
        // received packet's delta (250 us units) from the previous one.
        var arrivalUs = Int64(try Rtcp.transportCcReferenceTime(v)) * 64_000
        let history = sendHistories + i
        let estimator = sendSideEstimators + i
        _ = try Rtcp.forEachTransportCcPacket(v) { sequence, delta in
            if let delta { arrivalUs += Int64(delta) * 250 }
            history.pointee.reported(sequence)
            guard let sent = history.pointee.lookup(sequence) else { return }
            estimator.pointee.packet(sendNs: sent.sendNs, arrivalNs: delta == nil ? nil : arrivalUs * 1000, bytes: sent.bytes, cluster: sent.cluster)
        }
        let estimate = estimator.pointee.feedbackDone(nowNs: turnNs)
        transports[t].counters.availableOutgoingBitrate = UInt64(estimate)
        maybeAllocate(transport: t, estimate: estimate)
        if sendSideControls[i].drain.waiting > 0 { releaseDrainedKeyFrames(transport: t, force: false) }
        if transports[t].traceBwe, turnNs - transports[t].lastBweTraceNs >= 1_000_000_000 {
            transports[t].lastBweTraceNs = turnNs
            let e = estimator.pointee
            worker.onEvent(.bwe(transport: transports[t].handle, BweRecord(
                availableBitrate: estimate, ackedBitrate: e.ackedBitrate ?? 0, delayBasedBitrate: e.delayBased.estimate,
                lossBasedBitrate: e.lossBased.estimate, lossFraction: e.lossBased.lossFraction,
                minBitrate: e.delayBased.minBitrate, maxBitrate: e.delayBased.maxBitrate, probeBitrate: e.lastProbeResult)))
        }
    }
}
