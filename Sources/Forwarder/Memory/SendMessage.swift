import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// One outgoing sendmsg, laid out in a fixed 512-byte slot of the message
/// slab: its msghdr, up to `maxSegments` iovecs (one per packet slot), the
/// UDP_SEGMENT control message, the destination and the packet slots it
/// owns. Nothing is allocated to send.
///
/// Layout: msghdr @0, iovec[16] @64, cmsg @320, sockaddr @352,
/// slot indices @384, segment count @448, segment size @452, last-short @456.
package struct SendMessage {
    package static let slotSize = 512
    package static let maxSegments = 16

    package let base: UnsafeMutableRawPointer

    @inline(__always) package init(_ base: UnsafeMutableRawPointer) { self.base = base }

    var header: UnsafeMutablePointer<msghdr> { base.assumingMemoryBound(to: msghdr.self) }
    var iovecs: UnsafeMutablePointer<iovec> { (base + 64).assumingMemoryBound(to: iovec.self) }
    var control: UnsafeMutableRawPointer { base + 320 }
    var address: UnsafeMutableRawPointer { base + 352 }
    var slots: UnsafeMutablePointer<Int32> { (base + 384).assumingMemoryBound(to: Int32.self) }

    package var segmentCount: Int32 {
        get { base.load(fromByteOffset: 448, as: Int32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 448, as: Int32.self) }
    }
    package var segmentSize: Int32 {
        get { base.load(fromByteOffset: 452, as: Int32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 452, as: Int32.self) }
    }
    /// A shorter segment can only be the last one of a GSO send.
    package var lastShort: Bool {
        get { base.load(fromByteOffset: 456, as: UInt8.self) != 0 }
        nonmutating set { base.storeBytes(of: newValue ? 1 : 0, toByteOffset: 456, as: UInt8.self) }
    }
    package var totalBytes: Int32 {
        get { base.load(fromByteOffset: 460, as: Int32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 460, as: Int32.self) }
    }

    /// Socket table index to send from.
    package var socket: Int32 {
        get { base.load(fromByteOffset: 464, as: Int32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 464, as: Int32.self) }
    }
    /// Consumer whose packets these are (to clear its pending batch).
    package var consumer: Int32 {
        get { base.load(fromByteOffset: 468, as: Int32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 468, as: Int32.self) }
    }

    @inline(__always)
    func begin(destination: borrowing SocketAddress, socket: Int32, consumer: Int32) {
        self.socket = socket
        self.consumer = consumer
        segmentCount = 0
        segmentSize = 0
        lastShort = false
        totalBytes = 0
        let storage = destination.storage
        let length = Int(destination.length)
        withUnsafeBytes(of: storage) { src in
            address.copyMemory(from: src.baseAddress!, byteCount: length)
        }
        let h = header
        h.pointee.msg_name = address
        h.pointee.msg_namelen = destination.length
        h.pointee.msg_iov = iovecs
        h.pointee.msg_iovlen = 0
        h.pointee.msg_control = nil
        h.pointee.msg_controllen = 0
        h.pointee.msg_flags = 0
    }

    /// Whether a packet of `length` bytes can join this send as a segment.
    @inline(__always)
    func accepts(length: Int, maxSegments: Int) -> Bool {
        let n = Int(segmentCount)
        if n == 0 { return true }
        guard n < maxSegments, !lastShort, length <= Int(segmentSize) else { return false }
        // The kernel caps a GSO send at 64 KiB of payload.
        return Int(totalBytes) + length <= 60_000
    }

    @inline(__always)
    func append(slot: Int32, data: UnsafeMutableRawPointer, length: Int) {
        let n = Int(segmentCount)
        if n == 0 { segmentSize = Int32(length) } else if length < Int(segmentSize) { lastShort = true }
        iovecs[n] = iovec(iov_base: data, iov_len: length)
        slots[n] = slot
        segmentCount = Int32(n + 1)
        totalBytes += Int32(length)
    }

    /// Finalises the msghdr; with more than one segment it carries a
    /// UDP_SEGMENT control message so the kernel splits the datagrams.
    @inline(__always)
    func seal() {
        let h = header
        let n = Int(segmentCount)
        h.pointee.msg_iovlen = n
        if n > 1 {
            h.pointee.msg_control = control
            h.pointee.msg_controllen = rsfu_write_gso_cmsg(control, UInt16(segmentSize))
        }
    }
}
