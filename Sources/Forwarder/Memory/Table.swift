/// One of the forwarder's preallocated tables of rows (routers, transports,
/// producers, consumers, ...), indexed by row. In release builds an access is
/// a raw pointer offset (no reference counting, no exclusivity checks); debug
/// builds check every index, so a stale or corrupt row number traps in
/// tests instead of touching another row's memory.
struct Table<Element> {
    let base: UnsafeMutablePointer<Element>
    let count: Int

    /// `count` rows, each initialised to `row`.
    init(count: Int, repeating row: Element) {
        base = .allocate(capacity: count)
        base.initialize(repeating: row, count: count)
        self.count = count
    }

    /// Frees the rows (the loop's tear-down, once).
    func deallocate() {
        base.deinitialize(count: count)
        base.deallocate()
    }

    subscript(_ i: Int) -> Element {
        @inline(__always) unsafeAddress {
            assert(i >= 0 && i < count, "row \(i) of a table of \(count)")
            return UnsafePointer(base + i)
        }
        @inline(__always) nonmutating unsafeMutableAddress {
            assert(i >= 0 && i < count, "row \(i) of a table of \(count)")
            return base + i
        }
    }

    /// A row's address (for key paths into it).
    @inline(__always)
    static func + (table: Table, i: Int) -> UnsafeMutablePointer<Element> {
        assert(i >= 0 && i < table.count, "row \(i) of a table of \(table.count)")
        return table.base + i
    }
}
