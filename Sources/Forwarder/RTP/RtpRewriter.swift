/// A consumer's numbering: maps the producer's (input) sequence numbers and
/// timestamps to the consumer's (output) ones across re-syncs (resume,
/// simulcast switch) and dropped packets, and maps a NACKed output sequence
/// number back to the input one. A pure value: time comes in as a parameter.
///
/// Dropped packets (padding only, which carries nothing the endpoint
/// needs) are hidden: later packets are numbered as if they never existed,
/// so the endpoint sees no gap to NACK. Late packets (older than a drop)
/// keep the numbering they would have had.
package struct RtpRewriter {
    /// Runs of consecutive drops remembered (a dropped layer's packets come
    /// in runs: one per picture); a packet older than the oldest forgotten
    /// run can no longer be numbered, nor a NACK for it mapped back. 64: an
    /// SVC consumer below the top layer drops a run per picture, and a NACK
    /// can come a queue's delay later (over a second on a link that was
    /// just overrun: with 16 runs, 0.8 s at 20 frames/s, the lost key frame
    /// could not be repaired and the endpoint froze until its own 3 s
    /// timeout).
    package static let maxDrops = 64

    package init() {}

    /// Whether a first packet was numbered.
    package private(set) var started = false
    /// Added to inputs newer than every remembered drop.
    package private(set) var offset: UInt16 = 0
    package private(set) var timestampOffset: UInt32 = 0
    /// The newest output sent, its timestamp and when.
    package private(set) var lastOutput: UInt16 = 0
    package private(set) var lastTimestamp: UInt32 = 0
    package private(set) var lastSentNs: Int64 = 0
    /// The input the current numbering starts at, the newest input seen
    /// since, and how far apart they are (extended): only inputs in that
    /// span were numbered by the current offset.
    package private(set) var syncInput: UInt16 = 0
    package private(set) var newestInput: UInt16 = 0
    package private(set) var span: UInt32 = 0
    /// Runs of inputs dropped under the current numbering (first input,
    /// length), oldest first; inputs older than `floorInput` (the end of a
    /// forgotten run) cannot be numbered.
    private var runStarts = InlineArray<64, UInt16>(repeating: 0)
    private var runLengths = InlineArray<64, UInt16>(repeating: 0)
    package private(set) var dropCount = 0
    private var floorInput: UInt16 = 0
    private var hasFloor = false

    /// `a` is newer than `b` (RFC 3550 wrap-around).
    @inline(__always) package static func newer(_ a: UInt16, than b: UInt16) -> Bool {
        a != b && a &- b < 0x8000
    }

    /// Starts a numbering at `input`: it is sent as the packet after the
    /// last one sent (or as itself on the first start). With
    /// `continueTimestamps` its timestamp follows the last one sent by the
    /// time elapsed (at least one tick), so a switch to another stream
    /// (another clock base) keeps timestamps moving forward.
    package mutating func sync(input: UInt16, timestamp: UInt32, continueTimestamps: Bool, nowNs: Int64, clockRate: Int64) {
        let base = started ? lastOutput &+ 1 : input
        offset = base &- input
        if continueTimestamps && started {
            let ticks = max(1, MediaTime.rtp(max(0, nowNs - lastSentNs), clockRate: clockRate))
            timestampOffset = (lastTimestamp &+ ticks) &- timestamp
        }
        started = true
        syncInput = input
        newestInput = input
        span = 0
        dropCount = 0
        hasFloor = false
    }

    /// Dropped inputs remembered that are newer than `input`.
    @inline(__always) private func dropsNewer(than input: UInt16) -> Int {
        var k = 0
        for i in 0..<dropCount {
            let start = runStarts[i], length = runLengths[i]
            if Self.newer(start, than: input) {
                k += Int(length)
            } else {
                let last = start &+ length &- 1
                if Self.newer(last, than: input) { k += Int(last &- input) }
            }
        }
        return k
    }

    @inline(__always) private func isDropped(_ input: UInt16) -> Bool { run(containing: input) != nil }

    @inline(__always) private func run(containing input: UInt16) -> Int? {
        for i in 0..<dropCount where input &- runStarts[i] < runLengths[i] { return i }
        return nil
    }

    /// Whether `input` belongs to the current numbering: not before its
    /// start nor a forgotten drop, not after the newest input seen.
    @inline(__always) private func covers(_ input: UInt16) -> Bool {
        let sinceSync = UInt32(input &- syncInput)
        guard span >= 0xFFFF || sinceSync <= span else { return false }
        return !hasFloor || !Self.newer(floorInput, than: input)
    }

    /// The output number of a packet to forward, nil when it cannot be
    /// numbered (a dropped one, or older than what the numbering
    /// remembers). Newer inputs extend the numbering.
    @inline(__always)
    package mutating func output(for input: UInt16) -> UInt16? {
        guard started else { return nil }
        if Self.newer(input, than: newestInput) {
            span &+= UInt32(input &- newestInput)
            newestInput = input
            return input &+ offset
        }
        guard covers(input), !isDropped(input) else { return nil }
        return input &+ offset &+ UInt16(dropsNewer(than: input))
    }

    /// Hides a packet that is not forwarded (padding only): packets after
    /// it close the gap. An input older than the newest seen cannot be
    /// hidden (later ones are already numbered); it just goes unsent.
    package mutating func drop(_ input: UInt16) {
        guard started, Self.newer(input, than: newestInput) else { return }
        span &+= UInt32(input &- newestInput)
        newestInput = input
        offset &-= 1
        let last = dropCount - 1
        if last >= 0, runStarts[last] &+ runLengths[last] == input, runLengths[last] < 0x7FFF {
            runLengths[last] += 1 // the run goes on
            return
        }
        if dropCount == Self.maxDrops {
            // Forget the oldest run: inputs up to its end can no longer be numbered.
            floorInput = runStarts[0] &+ runLengths[0]
            hasFloor = true
            for i in 1..<dropCount {
                runStarts[i - 1] = runStarts[i]
                runLengths[i - 1] = runLengths[i]
            }
            dropCount -= 1
        }
        runStarts[dropCount] = input
        runLengths[dropCount] = 1
        dropCount += 1
    }

    /// Records a packet that left (not a retransmission): the newest output
    /// and timestamp so far, and when.
    @inline(__always)
    package mutating func sent(output: UInt16, timestamp: UInt32, nowNs: Int64) {
        if Self.newer(output, than: lastOutput) || lastSentNs == 0 {
            lastOutput = output
        }
        lastTimestamp = timestamp
        lastSentNs = nowNs
    }

    /// The output timestamp of an input one.
    @inline(__always) package func timestamp(for input: UInt32) -> UInt32 { input &+ timestampOffset }

    /// The input a NACKed output number stands for, nil when that output
    /// was not sent under the current numbering or stood for a drop.
    package func input(forOutput output: UInt16) -> UInt16? {
        guard started, !Self.newer(output, than: lastOutput) else { return nil }
        // out = in + offset + (drops newer than in): above the newest run
        // no drop counts; each run passed on the way down adds its length.
        var candidate = output &- offset
        var k = dropCount - 1
        while k >= 0 {
            let end = runStarts[k] &+ runLengths[k] &- 1
            if Self.newer(candidate, than: end) { break }
            candidate &-= runLengths[k]
            k -= 1
        }
        guard covers(candidate), !isDropped(candidate),
              candidate &+ offset &+ UInt16(dropsNewer(than: candidate)) == output else { return nil }
        return candidate
    }
}
