import RingSFUForwarder

/// A worker's lookup tables for its entities, by id (the RPC layer's
/// lookups) and by forwarder handle (events from the forwarder), kept in
/// one place so that every add has its remove. Removal only takes out the
/// very entity given: an id can be reused by a pipe producer in another
/// router of the same worker, and a handle's row by a later entity.
@RingSFUActor
struct EntityRegistry {
    private(set) var transportsById: [String: Transport] = [:]
    private(set) var transportsByHandle: [Handle: Transport] = [:]
    private(set) var producersById: [String: Producer] = [:]
    private(set) var producersByHandle: [Handle: Producer] = [:]
    private(set) var consumersById: [String: Consumer] = [:]
    private(set) var consumersByHandle: [Handle: Consumer] = [:]
    private(set) var rtpObserversById: [String: RtpObserver] = [:]
    private(set) var observersByHandle: [Handle: RtpObserver] = [:]
    private(set) var dataProducersById: [String: DataProducer] = [:]
    private(set) var dataConsumersById: [String: DataConsumer] = [:]

    /// Entities of every kind (for the least-loaded worker choice).
    var count: Int { transportsById.count + producersById.count + consumersById.count }

    mutating func add(_ t: Transport) {
        transportsById[t.id] = t
        transportsByHandle[t.handle] = t
    }

    mutating func remove(_ t: Transport) {
        Self.remove(t, at: t.id, from: &transportsById)
        Self.remove(t, at: t.handle, from: &transportsByHandle)
    }

    mutating func add(_ p: Producer) {
        // The first producer with an id keeps it (a pipe producer in another
        // router of this worker shares its source's id).
        if producersById[p.id] == nil { producersById[p.id] = p }
        producersByHandle[p.handle] = p
    }

    mutating func remove(_ p: Producer) {
        Self.remove(p, at: p.id, from: &producersById)
        Self.remove(p, at: p.handle, from: &producersByHandle)
    }

    mutating func add(_ c: Consumer) {
        consumersById[c.id] = c
        consumersByHandle[c.handle] = c
    }

    mutating func remove(_ c: Consumer) {
        Self.remove(c, at: c.id, from: &consumersById)
        Self.remove(c, at: c.handle, from: &consumersByHandle)
    }

    mutating func add(_ o: RtpObserver) {
        rtpObserversById[o.id] = o
        observersByHandle[o.handle] = o
    }

    mutating func remove(_ o: RtpObserver) {
        Self.remove(o, at: o.id, from: &rtpObserversById)
        Self.remove(o, at: o.handle, from: &observersByHandle)
    }

    mutating func add(_ dp: DataProducer) {
        if dataProducersById[dp.id] == nil { dataProducersById[dp.id] = dp }
    }

    mutating func remove(_ dp: DataProducer) {
        Self.remove(dp, at: dp.id, from: &dataProducersById)
    }

    mutating func add(_ dc: DataConsumer) { dataConsumersById[dc.id] = dc }

    mutating func remove(_ dc: DataConsumer) {
        Self.remove(dc, at: dc.id, from: &dataConsumersById)
    }

    /// Takes `entity` out of `map` only if it is what `key` holds.
    private static func remove<Key, Entity: AnyObject>(_ entity: Entity, at key: Key, from map: inout [Key: Entity]) {
        if map[key] === entity { map[key] = nil }
    }
}
