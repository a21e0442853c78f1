/// A public entity event in wire form: `<entity>.<event>` with mediasoup's
/// event names, and the entity's id as `<entity>Id` in the parameters. The
/// JSON-RPC server pushes these as notifications; embedders may tap them too.
public struct EntityNotification: Sendable, Hashable {
    public var method: String
    public var params: [String: JSONValue]
    /// The id of the entity the event is about.
    public var entityId: String

    public init(method: String, entityId: String, params: [String: JSONValue]) {
        self.method = method
        self.entityId = entityId
        self.params = params
    }
}
