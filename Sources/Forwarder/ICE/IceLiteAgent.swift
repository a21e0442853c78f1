/// The ICE-lite side of a WebRTC transport (RFC 8445 section 2.5, with
/// RFC 7675 consent): it answers checks, lets the controlling peer nominate
/// a tuple (USE-CANDIDATE, or the first valid check while none is
/// selected), and goes "disconnected" when checks stop for the consent
/// timeout, "completed" again when they resume on the selected tuple.
/// A pure value: time comes in as a parameter; the caller answers the
/// check, switches tuples and emits the state changes it returns.
struct IceLiteAgent {
    private(set) var state = IceState.new
    /// When the last valid check arrived.
    private(set) var lastCheckNs: Int64 = 0

    struct CheckOutcome: Equatable {
        /// Make the check's tuple the selected one.
        var select = false
        /// The new state, when it changed.
        var state: IceState? = nil
        /// A tuple is (now) nominated: DTLS may start.
        var nominated = false
    }

    /// A valid (authenticated) binding request. `onSelectedTuple`: it came
    /// on the selected tuple; `anySelected`: a tuple is selected already.
    mutating func validCheck(nowNs: Int64, useCandidate: Bool, onSelectedTuple: Bool, anySelected: Bool) -> CheckOutcome {
        lastCheckNs = nowNs
        var out = CheckOutcome()
        if state == .disconnected && onSelectedTuple {
            // Checks resumed on the selected tuple: consent is back.
            state = .completed
            out.state = .completed
        }
        guard useCandidate || !anySelected else { return out }
        out.select = !onSelectedTuple
        out.nominated = true
        let next: IceState = useCandidate ? .completed : max(state, .connected)
        if next != state {
            state = next
            out.state = next
        }
        return out
    }

    /// The periodic consent check: returns `.disconnected` when a connected
    /// transport has had no valid check for `timeoutNs`.
    mutating func consentCheck(nowNs: Int64, timeoutNs: Int64) -> IceState? {
        guard state == .connected || state == .completed, nowNs - lastCheckNs > timeoutNs else { return nil }
        state = .disconnected
        return .disconnected
    }

    /// The selected tuple is gone (its TCP connection closed).
    mutating func selectedTupleLost() -> IceState? {
        guard state != .disconnected else { return nil }
        state = .disconnected
        return .disconnected
    }
}
