/// Key frame requests (PLI or FIR) for one producer stream: requests made
/// while one is outstanding are coalesced into it; an unanswered request
/// is repeated once after `retryNs`, then given up; a key frame arriving
/// ends it. A pure value: time comes in as a parameter, and what to send
/// (and when to look again) comes back.
struct KeyFrameRequester {
    /// How long a request waits for its key frame before one retry.
    static let retryNs: Int64 = 1_000_000_000

    enum Action: Equatable {
        case none
        /// Send a request now and call `retryDue` at `retryAtNs`.
        case send(retryAtNs: Int64)
    }

    /// Whether a request is outstanding, and when it (or its retry) was sent.
    private(set) var pending = false
    private(set) var pendingSinceNs: Int64 = 0
    private(set) var retried = false

    /// Someone needs a key frame.
    mutating func request(nowNs: Int64) -> Action {
        // Outstanding: the retry covers it. A request far older than its
        // retry (the timer was lost) no longer counts.
        if pending && nowNs - pendingSinceNs < 3 * Self.retryNs { return .none }
        pending = true
        pendingSinceNs = nowNs
        retried = false
        return .send(retryAtNs: nowNs + Self.retryNs)
    }

    /// The retry time of a request came: one more request, then give up.
    /// A timer left over from an earlier request does nothing.
    mutating func retryDue(nowNs: Int64) -> Action {
        guard pending, nowNs - pendingSinceNs >= Self.retryNs - 10_000_000 else { return .none }
        if retried {
            pending = false
            return .none
        }
        retried = true
        pendingSinceNs = nowNs
        return .send(retryAtNs: nowNs + Self.retryNs)
    }

    /// A key frame arrived; returns whether it answered a request.
    @discardableResult
    mutating func keyFrameArrived() -> Bool {
        guard pending else { return false }
        pending = false
        return true
    }
}
