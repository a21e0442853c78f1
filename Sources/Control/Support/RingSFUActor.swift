/// The single serial isolation domain of the control plane. Every entity
/// lives on it, so a closure cascade runs to completion, in order, exactly
/// as mediasoup's single-threaded JavaScript layer does.
@globalActor
public actor RingSFUActor {
    public static let shared = RingSFUActor()
}
