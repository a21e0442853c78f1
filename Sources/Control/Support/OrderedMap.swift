/// A dictionary that iterates in insertion order, so closure cascades visit
/// children in the order they were created, as mediasoup's Maps do.
struct OrderedMap<Value> {
    private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    var values: [Value] { keys.compactMap { storage[$0] } }
    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }

    subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    mutating func removeAll() {
        keys = []
        storage = [:]
    }
}
