import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// mediasoup's `sctpParameters` of a transport (what the remote side needs
/// to set up its SCTP association).
public struct SctpParameters: Codable, Sendable, Hashable {
    public var port: Int
    /// Outgoing and incoming stream counts.
    public var OS: Int
    public var MIS: Int
    public var maxMessageSize: Int
}

/// Stream counts for `enableSctp`, with mediasoup's field names.
public struct NumSctpStreams: Codable, Sendable, Hashable {
    public var OS: Int
    public var MIS: Int
    public init(OS: Int = 1024, MIS: Int = 1024) {
        self.OS = OS
        self.MIS = MIS
    }
}

/// One SCTP association (RFC 8261, data channels of RFC 8831) over a
/// WebRTC transport's DTLS. usrsctp runs without threads of its own: input,
/// sends and timers are all called on this actor, and its callbacks come
/// back inside those calls, so the association needs no locks. SCTP
/// packets reach the forwarder thread only as DTLS application data.
@RingSFUActor
final class SctpAssociation {
    enum State: String { case new, connecting, connected, failed, closed }

    let id: UInt
    let parameters: SctpParameters
    private(set) var state = State.new
    private var raw: OpaquePointer?
    let sendBufferSize: Int
    /// Bytes queued and not yet acknowledged by the peer.
    private(set) var bufferedAmount = 0
    /// Where the association's packets and messages go.
    var output: ([UInt8]) -> Void = { _ in }
    var onMessage: (_ streamId: UInt16, _ ppid: UInt32, _ data: [UInt8]) -> Void = { _, _, _ in }
    var onState: (State) -> Void = { _ in }
    var onStreamReset: (UInt16) -> Void = { _ in }
    var onBufferedAmount: (Int) -> Void = { _ in }

    enum SendResult { case sent, bufferFull, failed }

    init(streams: NumSctpStreams, maxMessageSize: Int, sendBufferSize: Int) throws(SFUError) {
        SctpStack.start()
        id = SctpStack.nextId()
        parameters = SctpParameters(port: 5000, OS: streams.OS, MIS: streams.MIS, maxMessageSize: maxMessageSize)
        self.sendBufferSize = sendBufferSize
        guard let s = rsfu_sctp_create(UInt(id), UInt16(streams.OS), UInt16(streams.MIS), UInt32(sendBufferSize), UInt32(maxMessageSize)) else {
            throw .failure("could not create the SCTP association")
        }
        raw = s
        SctpStack.associations[id] = self
    }

    /// Starts the association once DTLS is up (both sides send INIT; SCTP
    /// resolves the collision).
    func connect(remotePort: Int) {
        guard let raw, state == .new else { return }
        setState(.connecting)
        if SctpStack.calling({ rsfu_sctp_connect(raw, UInt16(clamping: remotePort)) }) != 0 { setState(.failed) }
    }

    /// An SCTP packet from the peer (DTLS application data).
    func input(_ packet: [UInt8]) {
        guard let raw else { return }
        SctpStack.calling { packet.withUnsafeBytes { rsfu_sctp_input(raw, $0.baseAddress, $0.count) } }
    }

    /// Sends one message: queued, refused because the send buffer is full,
    /// or failed (not connected, or too large).
    @discardableResult
    func send(streamId: Int, ppid: UInt32, ordered: Bool, maxRetransmits: Int?, maxPacketLifeTime: Int?, _ message: [UInt8]) -> SendResult {
        guard let raw, state == .connected else { return .failed }
        let rc = SctpStack.calling {
            message.withUnsafeBytes {
                rsfu_sctp_send(raw, UInt16(streamId), ppid, ordered ? 1 : 0, Int32(maxRetransmits ?? -1), Int32(maxPacketLifeTime ?? -1), $0.baseAddress, $0.count)
            }
        }
        if rc == 0 {
            setBufferedAmount(bufferedAmount + max(1, message.count))
            return .sent
        }
        return rc == -EWOULDBLOCK || rc == -EAGAIN || rc == -ENOBUFS ? .bufferFull : .failed
    }

    private func setBufferedAmount(_ value: Int) {
        let v = max(0, value)
        guard v != bufferedAmount else { return }
        bufferedAmount = v
        onBufferedAmount(v)
    }

    /// Resets our outgoing stream (the peer's data channel on it closes).
    func resetStream(_ streamId: Int) {
        guard let raw, state == .connected else { return }
        _ = SctpStack.calling { rsfu_sctp_reset_stream(raw, UInt16(streamId)) }
    }

    func close() {
        guard let raw else { return }
        self.raw = nil
        if state != .failed { state = .closed }
        // Closing may still send (an ABORT): the id stays routable until it
        // is done. From inside one of usrsctp's callbacks (an application
        // closing a transport on an event) it waits until usrsctp returns.
        SctpStack.close(raw, id: id)
    }

    fileprivate func setState(_ s: State) {
        guard state != s else { return }
        state = s
        onState(s)
    }

    fileprivate func event(kind: Int32, value: Int32) {
        switch kind {
        case Int32(RSFU_SCTP_CONNECTED): setState(.connected)
        case Int32(RSFU_SCTP_FAILED): setState(.failed)
        case Int32(RSFU_SCTP_CLOSED): setState(.closed)
        case Int32(RSFU_SCTP_STREAM_RESET): onStreamReset(UInt16(truncatingIfNeeded: value))
        case Int32(RSFU_SCTP_SEND_SPACE): setBufferedAmount(sendBufferSize - Int(value))
        default: break
        }
    }
}

/// The process-wide usrsctp instance: associations by id, and the timer
/// that drives retransmissions while any association exists.
@RingSFUActor
enum SctpStack {
    static var associations: [UInt: SctpAssociation] = [:]
    private static var started = false
    private static var lastId: UInt = 0
    private static var timer: Task<Void, Never>?

    /// usrsctp calls in progress, and associations to free once none is.
    private static var depth = 0
    private static var pendingCloses: [(OpaquePointer, UInt)] = []

    /// Runs a usrsctp call; closes requested meanwhile happen after it.
    static func calling<T>(_ body: () -> T) -> T {
        depth += 1
        let result = body()
        depth -= 1
        if depth == 0 {
            while !pendingCloses.isEmpty {
                let (raw, id) = pendingCloses.removeLast()
                close(raw, id: id)
            }
        }
        return result
    }

    static func close(_ raw: OpaquePointer, id: UInt) {
        guard depth == 0 else {
            pendingCloses.append((raw, id))
            return
        }
        depth += 1
        rsfu_sctp_close(raw)
        depth -= 1
        associations[id] = nil
    }

    static func nextId() -> UInt {
        lastId += 1
        return lastId
    }

    static func start() {
        if !started {
            started = true
            _ = rsfu_sctp_global_init(sctpOutput, sctpMessage, sctpEvent)
        }
        guard timer == nil else { return }
        timer = Task { @RingSFUActor in
            var last = ContinuousClock.now
            while !associations.isEmpty {
                try? await Task.sleep(for: .milliseconds(10))
                // Whole milliseconds; the remainder is carried to the next tick.
                let elapsed = ContinuousClock.now - last
                let ms = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
                last = last.advanced(by: .milliseconds(ms))
                calling { rsfu_sctp_handle_timers(UInt32(clamping: ms)) }
            }
            timer = nil
        }
    }
}

// usrsctp's callbacks: they run inside calls made on RingSFUActor, which
// the C boundary cannot express; checked, then run as isolated.
private func onActor(_ body: @RingSFUActor () -> Void) {
    RingSFUActor.shared.preconditionIsolated("usrsctp called back outside RingSFUActor")
    withoutActuallyEscaping(body) { (isolated: @escaping @RingSFUActor () -> Void) in
        unsafeBitCast(isolated, to: (() -> Void).self)()
    }
}

private func sctpOutput(_ id: UInt, _ data: UnsafeRawPointer?, _ length: Int) {
    guard let data else { return }
    let packet = Array(UnsafeRawBufferPointer(start: data, count: length))
    onActor { SctpStack.associations[id]?.output(packet) }
}

private func sctpMessage(_ id: UInt, _ streamId: UInt16, _ ppid: UInt32, _ data: UnsafeRawPointer?, _ length: Int) {
    let message = data.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
    onActor { SctpStack.associations[id]?.onMessage(streamId, ppid, message) }
}

private func sctpEvent(_ id: UInt, _ kind: Int32, _ value: Int32) {
    onActor { SctpStack.associations[id]?.event(kind: kind, value: value) }
}
