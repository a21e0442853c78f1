/// The errors of the control API, mirroring mediasoup's error classes so a
/// server can map them one to one (TypeError, UnsupportedError,
/// InvalidStateError).
public enum SFUError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A malformed or out-of-range argument (mediasoup's `TypeError`).
    case invalidArgument(String)
    /// A well-formed request for something not supported (`UnsupportedError`).
    case unsupported(String)
    /// A method called on a closed entity, or in the wrong state (`InvalidStateError`).
    case invalidState(String)
    /// Anything else (mediasoup's plain `Error`), e.g. an unknown producer id.
    case failure(String)

    /// The mediasoup error class name.
    public var typeName: String {
        switch self {
        case .invalidArgument: "TypeError"
        case .unsupported: "UnsupportedError"
        case .invalidState: "InvalidStateError"
        case .failure: "Error"
        }
    }

    public var message: String {
        switch self {
        case .invalidArgument(let m), .unsupported(let m), .invalidState(let m), .failure(let m): m
        }
    }

    public var description: String { "\(typeName): \(message)" }
}
