import RingSFUCShims

/// Timer kinds of the wheel.
enum TimerKind: UInt16 {
    case observerInterval = 1
    case dtlsRetransmit = 2
    case iceConsent = 3
    case tcpIdle = 4
    case keyFrameRetry = 5
    case nack = 6
    case reports = 7
    case feedback = 8
    case probe = 9
    case drainedKeyFrame = 10
}

/// Audio level observers (RFC 6464 ssrc-audio-level): per packet, add the
/// level to each watching observer's running sum; per interval, report the
/// sums to the control plane, which turns them into `volumes`/`silence`.
extension ForwarderLoop {
    @inline(__always)
    mutating func recordAudioLevel(_ p: Int, _ packet: UnsafeMutableRawPointer, _ header: RtpHeader) {
        let id = producers[p].audioLevelId
        guard id != 0 else { return }
        var level: Int32 = -1
        try? RtpHeaderExtensions.forEach(packet, header) { extId, offset, length in
            if extId == id, length >= 1 { level = Int32(packet.load(fromByteOffset: offset, as: UInt8.self) & 0x7F) }
        }
        guard level >= 0 else { return }
        for i in 0..<producers[p].observerCount {
            producers[p].levelSums[i] &+= UInt32(level)
            producers[p].levelCounts[i] &+= 1
        }
    }

    mutating func fireTimers() {
        // Collected first (firing may reschedule into the wheel), in rounds
        // of 64 so that any number of due timers fire without allocating.
        var due = InlineArray<64, UInt32>(repeating: 0)
        var kinds = InlineArray<64, UInt16>(repeating: 0)
        while true {
            var dueCount = 0
            let fired = timers.advance(to: rsfu_monotonic_ns(), limit: 64) { timer in
                due[dueCount] = timer.argument
                kinds[dueCount] = timer.kind
                dueCount += 1
            }
            for i in 0..<dueCount {
                switch TimerKind(rawValue: kinds[i]) {
                case .observerInterval: observerIntervalEnded(Int(due[i]))
                case .dtlsRetransmit: dtlsTimerFired(Int(due[i]))
                case .iceConsent: consentTimerFired()
                case .tcpIdle: tcpIdleTimerFired(Int(due[i]))
                case .keyFrameRetry: keyFrameRetryFired(due[i])
                case .nack: nackTimerFired()
                case .reports: reportTimerFired()
                case .feedback: feedbackTimerFired()
                case .probe: probeTimerFired(due[i])
                case .drainedKeyFrame: drainDeadlineFired(due[i])
                case nil: break
                }
            }
            if fired < 64 { break }
        }
    }

    mutating func observerIntervalEnded(_ o: Int) {
        guard observers[o].inUse else { return }
        observers[o].timer = timers.schedule(.init(kind: TimerKind.observerInterval.rawValue, argument: UInt32(o)), at: rsfu_monotonic_ns() + observers[o].intervalNs)
        guard !observers[o].paused else { return }
        // One small array per interval (not per packet) for the control plane.
        var samples: [AudioLevelSample] = []
        samples.reserveCapacity(observers[o].producerCount)
        for k in 0..<observers[o].producerCount {
            let p = Int(observers[o].producers[k])
            guard let slot = observerSlot(p, o) else { continue }
            samples.append(AudioLevelSample(producer: producerCold[p].handle, levelSum: producers[p].levelSums[slot], count: producers[p].levelCounts[slot]))
            producers[p].levelSums[slot] = 0
            producers[p].levelCounts[slot] = 0
        }
        worker.onEvent(.audioLevels(observer: observers[o].handle, samples))
    }

    func observerSlot(_ p: Int, _ o: Int) -> Int? {
        for i in 0..<producers[p].observerCount where producers[p].observers[i] == Int32(o) { return i }
        return nil
    }

    mutating func addObserver(_ h: Int, router: Int, intervalMs: UInt32) {
        var o = ObserverState()
        o.inUse = true
        o.router = UInt32(router)
        o.intervalNs = Int64(max(1, intervalMs)) * 1_000_000
        observers[h] = o
        observers[h].timer = timers.schedule(.init(kind: TimerKind.observerInterval.rawValue, argument: UInt32(h)), at: rsfu_monotonic_ns() + o.intervalNs)
    }

    mutating func closeObserver(_ h: Int) {
        guard observers[h].inUse else { return }
        while observers[h].producerCount > 0 { observerRemoveProducer(h, Int(observers[h].producers[0])) }
        timers.cancel(observers[h].timer)
        observers[h] = ObserverState()
    }

    mutating func observerAddProducer(_ o: Int, _ p: Int) {
        guard observers[o].inUse, producers[p].inUse, observerSlot(p, o) == nil,
              producers[p].observerCount < 4, observers[o].producerCount < 32 else { return }
        let i = producers[p].observerCount
        producers[p].observers[i] = Int32(o)
        producers[p].levelSums[i] = 0
        producers[p].levelCounts[i] = 0
        producers[p].observerCount += 1
        observers[o].producers[observers[o].producerCount] = Int32(p)
        observers[o].producerCount += 1
    }

    mutating func observerRemoveProducer(_ o: Int, _ p: Int) {
        guard observers[o].inUse else { return }
        if let slot = observerSlot(p, o) {
            let last = producers[p].observerCount - 1
            producers[p].observers[slot] = producers[p].observers[last]
            producers[p].levelSums[slot] = producers[p].levelSums[last]
            producers[p].levelCounts[slot] = producers[p].levelCounts[last]
            producers[p].observers[last] = -1
            producers[p].observerCount = last
        }
        for k in 0..<observers[o].producerCount where observers[o].producers[k] == Int32(p) {
            let last = observers[o].producerCount - 1
            observers[o].producers[k] = observers[o].producers[last]
            observers[o].producers[last] = -1
            observers[o].producerCount = last
            break
        }
    }

    /// A closing producer leaves every observer watching it.
    mutating func detachFromObservers(_ p: Int) {
        while producers[p].observerCount > 0 {
            observerRemoveProducer(Int(producers[p].observers[0]), p)
        }
    }
}
