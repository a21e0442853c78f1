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
        if transportsById[t.id] === t { transportsById[t.id] = nil }
        if transportsByHandle[t.handle] === t { transportsByHandle[t.handle] = nil }
    }

    mutating func add(_ p: Producer) {
        // The first producer with an id keeps it (a pipe producer in another
        // router of this worker shares its source's id).
        if producersById[p.id] == nil { producersById[p.id] = p }
        producersByHandle[p.handle] = p
    }

    mutating func remove(_ p: Producer) {
        if producersById[p.id] === p { producersById[p.id] = nil }
        if producersByHandle[p.handle] === p { producersByHandle[p.handle] = nil }
    }

    mutating func add(_ c: Consumer) {
        consumersById[c.id] = c
        consumersByHandle[c.handle] = c
    }

    mutating func remove(_ c: Consumer) {
        if consumersById[c.id] === c { consumersById[c.id] = nil }
        if consumersByHandle[c.handle] === c { consumersByHandle[c.handle] = nil }
    }

    mutating func add(_ o: RtpObserver) {
        rtpObserversById[o.id] = o
        observersByHandle[o.handle] = o
    }

    mutating func remove(_ o: RtpObserver) {
        if rtpObserversById[o.id] === o { rtpObserversById[o.id] = nil }
        if observersByHandle[o.handle] === o { observersByHandle[o.handle] = nil }
    }

    mutating func add(_ dp: DataProducer) {
        if dataProducersById[dp.id] == nil { dataProducersById[dp.id] = dp }
    }

    mutating func remove(_ dp: DataProducer) {
        if dataProducersById[dp.id] === dp { dataProducersById[dp.id] = nil }
    }

    mutating func add(_ dc: DataConsumer) { dataConsumersById[dc.id] = dc }

    mutating func remove(_ dc: DataConsumer) {
        if dataConsumersById[dc.id] === dc { dataConsumersById[dc.id] = nil }
    }
}
