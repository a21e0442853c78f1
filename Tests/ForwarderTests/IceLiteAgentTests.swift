import Testing
@testable import RingSFUForwarder

/// The ICE-lite agent on simulated time: nomination, consent expiry and
/// its return.
@Suite("ICE-lite agent")
struct IceLiteAgentTests {
    static let s: Int64 = 1_000_000_000

    @Test func firstCheckSelectsAndUseCandidateCompletes() {
        var a = IceLiteAgent()
        #expect(a.validCheck(nowNs: 1, useCandidate: false, onSelectedTuple: false, anySelected: false)
                == .init(select: true, state: .connected, nominated: true))
        // Another tuple's plain check changes nothing once one is selected.
        #expect(a.validCheck(nowNs: 2, useCandidate: false, onSelectedTuple: false, anySelected: true) == .init())
        // USE-CANDIDATE on another tuple moves the selection there.
        #expect(a.validCheck(nowNs: 3, useCandidate: true, onSelectedTuple: false, anySelected: true)
                == .init(select: true, state: .completed, nominated: true))
        // Nominated again on the selected tuple: nothing new.
        #expect(a.validCheck(nowNs: 4, useCandidate: true, onSelectedTuple: true, anySelected: true)
                == .init(select: false, state: nil, nominated: true))
        #expect(a.state == .completed)
    }

    /// (seconds since the last check, timeout seconds) -> disconnected?
    static let consentCases: [(Int64, Int64, Bool)] = [(29, 30, false), (30, 30, false), (31, 30, true), (6, 5, true)]

    @Test(arguments: consentCases)
    func consentExpires(after: Int64, timeout: Int64, expected: Bool) {
        var a = IceLiteAgent()
        _ = a.validCheck(nowNs: 10 * Self.s, useCandidate: true, onSelectedTuple: false, anySelected: false)
        let state = a.consentCheck(nowNs: (10 + after) * Self.s, timeoutNs: timeout * Self.s)
        #expect((state == .disconnected) == expected)
        #expect(a.state == (expected ? .disconnected : .completed))
    }

    @Test func consentReturnsOnTheSelectedTupleOnly() {
        var a = IceLiteAgent()
        _ = a.validCheck(nowNs: 0, useCandidate: true, onSelectedTuple: false, anySelected: false)
        #expect(a.consentCheck(nowNs: 31 * Self.s, timeoutNs: 30 * Self.s) == .disconnected)
        #expect(a.consentCheck(nowNs: 40 * Self.s, timeoutNs: 30 * Self.s) == nil, "reported once")
        // A check from elsewhere (no nomination) does not bring it back.
        #expect(a.validCheck(nowNs: 41 * Self.s, useCandidate: false, onSelectedTuple: false, anySelected: true).state == nil)
        #expect(a.validCheck(nowNs: 42 * Self.s, useCandidate: false, onSelectedTuple: true, anySelected: true).state == .completed)
    }

    @Test func neverConnectedNeverDisconnects() {
        var a = IceLiteAgent()
        #expect(a.consentCheck(nowNs: 100 * Self.s, timeoutNs: 30 * Self.s) == nil)
        #expect(a.selectedTupleLost() == .disconnected)
        #expect(a.selectedTupleLost() == nil)
    }
}
