import RingSFUCShims
import Synchronization
import Glibc

/// The loop itself: waiting on the ring, draining completions, and the
/// work of a turn; and the helpers that queue submissions.
extension ForwarderLoop {
    // MARK: - Submission helpers

    /// Gets an SQE, flushing the submission queue first if it is full.
    @inline(__always)
    mutating func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(ring) { return s }
        _ = io_uring_submit(ring)
        if let s = io_uring_get_sqe(ring) { return s }
        // The kernel consumed nothing: wait for completions to make room.
        _ = io_uring_submit_and_wait(ring, 1)
        return io_uring_get_sqe(ring)!
    }

    mutating func armWake() {
        let s = sqe()
        io_uring_prep_read(s, worker.eventFd, wakeBuffer, 8, 0)
        io_uring_sqe_set_data64(s, userData(.wake, 0))
        wakeArmed = true
    }

    mutating func armReceive(socket index: Int) {
        let s = sqe()
        io_uring_prep_recvmsg_multishot(s, sockets[index].fd, receiveHeader, 0)
        s.pointee.flags |= UInt8(rsfu_sqe_buffer_select())
        s.pointee.buf_group = Self.bufferGroup
        io_uring_sqe_set_data64(s, userData(.receive, index))
        sockets[index].armed = true
        inflightReceives += 1
    }

    // MARK: - The loop

    /// Runs until stopped. Returns a reason if the ring failed fatally.
    mutating func run() -> String? {
        armWake()
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 256)
        defer { cqes.deallocate() }
        var ts = __kernel_timespec()
        // Coalescing: wait for a batch of completions, but once the
        // minimum wait has passed any completion ends it (so a packet after
        // a quiet spell is taken at once); when, see `TurnCoalescer`.
        let waitFor: UInt32 = max(1, settings.coalesceCompletions)
        var coalescer = TurnCoalescer(windowMicroseconds: rsfu_ring_has_min_wait(ring) != 0 ? settings.coalesceMicroseconds : 0,
                                      nowNs: rsfu_monotonic_ns(), packetsIn: counters.packetsIn)
        let minWait = coalescer.windowMicroseconds
        while fatalReason == nil {
            if worker.stopRequested.load(ordering: .acquiring) { break }
            // Wait for at least one completion, bounded by the next timer.
            var waitResult: Int32
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            if let deadline = timers.nextDeadline() {
                let delta = max(0, deadline - rsfu_monotonic_ns())
                ts.tv_sec = delta / 1_000_000_000
                ts.tv_nsec = delta % 1_000_000_000
                waitResult = coalescer.gather ? rsfu_submit_and_wait_min(ring, waitFor, &ts, minWait) : io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            } else {
                waitResult = coalescer.gather ? rsfu_submit_and_wait_min(ring, waitFor, nil, minWait) : io_uring_submit_and_wait_timeout(ring, &cqe, 1, nil, nil)
            }
            if waitResult < 0 && waitResult != -ETIME && waitResult != -EINTR && waitResult != -EAGAIN && waitResult != -EBUSY {
                fatalReason = "io_uring_submit_and_wait_timeout failed: errno \(-waitResult)"
                break
            }
            counters.loopTurns &+= 1
            turnNs = rsfu_monotonic_ns()
            coalescer.turn(nowNs: turnNs, packetsIn: counters.packetsIn)
            // Drain every completion available, in batches.
            while true {
                let n = Int(io_uring_peek_batch_cqe(ring, cqes, 256))
                if n == 0 { break }
                for i in 0..<n { handle(cqes[i]!) }
                io_uring_cq_advance(ring, UInt32(n))
                if n < 256 { break }
            }
            returnBuffers()
            flushSends()
            wakePipePeers()
            if wakePending {
                wakePending = false
                applyCommands()
                drainPipes()
                // Commands can produce packets too (DirectTransport): send
                // them with this turn's submit rather than the next event's.
                flushSends()
                wakePipePeers()
                if !wakeArmed { armWake() }
            }
            if timers.activeCount > 0 {
                fireTimers()
                // Timers send too (DTLS retransmissions, RTCP): before the wait.
                flushSends()
            }
        }
        return fatalReason
    }

    @inline(__always)
    mutating func handle(_ cqe: UnsafeMutablePointer<io_uring_cqe>) {
        let data = cqe.pointee.user_data
        let index = Int(data & 0x00FF_FFFF_FFFF_FFFF)
        switch data >> 56 {
        case OpTag.receive.rawValue: handleReceive(cqe, socket: index)
        case OpTag.send.rawValue: handleSendCompletion(message: index, result: cqe.pointee.res)
        case OpTag.wake.rawValue:
            wakeArmed = false
            wakePending = true
        case OpTag.accept.rawValue: handleAccept(cqe, socket: index)
        case OpTag.tcpReceive.rawValue: handleTcpReceive(result: cqe.pointee.res, socket: index)
        case OpTag.tcpSend.rawValue: handleTcpSend(result: cqe.pointee.res, connection: index)
        default: break
        }
    }
}
