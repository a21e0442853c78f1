import RingSFUCShims

/// Key frames for an overrun link, asked for when they can get through.
///
/// An SVC consumer held for an overrun link sends nothing until a key
/// frame. Asked for at once, that key frame reaches the link while its
/// queue is still full of what overran it and is lost there; the endpoint
/// then waits for its own request (libwebrtc: 3 s without a decodable
/// frame). So the request waits for the queue to drain (`DrainGate`).
/// (Simulcast switches to the lower layer's own stream, whose key frame
/// the endpoint repairs by NACK within the new numbering.)
extension ForwarderLoop {
    mutating func keyFrameWhenDrained(_ ci: Int) {
        let t = Int(consumers[ci].transport)
        let i = Int(transports[t].sendSide)
        guard i >= 0 else { requestKeyFrame(consumer: ci); return }
        guard !consumerCold[ci].keyFrameWhenDrained else { return }
        consumerCold[ci].keyFrameWhenDrained = true
        if let deadline = sendSideControls[i].drain.wait(nowNs: turnNs) {
            timers.schedule(.init(kind: TimerKind.drainedKeyFrame.rawValue, argument: UInt32(t)), at: deadline)
        }
    }

    /// After each feedback while some consumer waits, and at the deadline
    /// (`force`): asks for the waiting consumers' key frames once due.
    mutating func releaseDrainedKeyFrames(transport t: Int, force: Bool) {
        let i = Int(transports[t].sendSide)
        guard i >= 0, sendSideControls[i].drain.waiting > 0 else { return }
        let inFlight = force ? 0 : sendHistories[i].bytesInFlight()
        guard sendSideControls[i].drain.release(nowNs: turnNs, bytesInFlight: inFlight, estimate: sendSideEstimators[i].estimate, force: force) else { return }
        var c = transports[t].firstConsumer
        while c >= 0 {
            let ci = Int(c)
            c = consumerCold[ci].nextInTransport
            guard consumerCold[ci].keyFrameWhenDrained else { continue }
            consumerCold[ci].keyFrameWhenDrained = false
            if consumers[ci].active { requestKeyFrame(consumer: ci) }
        }
    }

    mutating func drainDeadlineFired(_ argument: UInt32) {
        let t = Int(argument)
        guard transports[t].inUse, transports[t].sendSide >= 0 else { return }
        turnNs = rsfu_monotonic_ns()
        // A wait that began later has its own deadline and timer.
        guard turnNs >= sendSideControls[Int(transports[t].sendSide)].drain.deadlineNs else { return }
        releaseDrainedKeyFrames(transport: t, force: true)
    }
}
