import RingSFUCShims
import RingSFUForwarder
#if canImport(Glibc)
import Glibc
#endif

/// The SFU's feedback to a publisher that a browser acts on: key frame
/// requests (the next frame of the named stream is a key frame) and NACKs
/// (the packets are resent as RTX). The load generator reads them from its
/// socket (SRTCP with the key of the server's direction).
final class PublisherFeedback {
    enum Request {
        case keyFrame(ssrc: UInt32)
        case nack(ssrc: UInt32, sequence: UInt16)
    }

    private let session: srtp_t?
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 8)
    private(set) var received = 0

    init(receiveKey: SrtpKey?) {
        session = receiveKey.flatMap { SrtpRaw.create($0, outbound: false) }
    }

    deinit {
        if let session { srtp_dealloc(session) }
        buffer.deallocate()
    }

    /// Reads what is queued on `fd` (at most 64 datagrams) and calls
    /// `request` with each key frame request and each NACKed packet.
    func poll(_ fd: Int32, _ request: (Request) -> Void) {
        for _ in 0..<64 {
            let n = recv(fd, buffer, 2048, Int32(MSG_DONTWAIT))
            guard n > 0 else { return }
            // RTCP only (RFC 5761: second byte 192-223).
            guard n >= 8, (192...223).contains(buffer.load(fromByteOffset: 1, as: UInt8.self)) else { continue }
            var length = Int32(n)
            if let session { guard srtp_unprotect_rtcp(session, buffer, &length) == srtp_err_status_ok else { continue } }
            Self.forEachRequest(UnsafeRawPointer(buffer), count: Int(length)) { r in
                if case .keyFrame = r { received += 1 }
                request(r)
            }
        }
    }

    /// The requests of a compound packet: PLIs (PSFB FMT 1), FIRs (PSFB
    /// FMT 4) and generic NACKs (RTPFB FMT 1); stops at the first
    /// malformed part.
    static func forEachRequest(_ p: UnsafeRawPointer, count: Int, _ body: (Request) -> Void) {
        var o = 0
        while o + 4 <= count {
            let b0 = p.load(fromByteOffset: o, as: UInt8.self), type = p.load(fromByteOffset: o + 1, as: UInt8.self)
            let words = Int(p.load(fromByteOffset: o + 2, as: UInt8.self)) << 8 | Int(p.load(fromByteOffset: o + 3, as: UInt8.self))
            let size = 4 + words * 4
            guard b0 >> 6 == 2, o + size <= count else { return }
            if type == 206, b0 & 0x1F == 1, size >= 12 {
                body(.keyFrame(ssrc: readUInt32(p + o, 8)))
            } else if type == 206, b0 & 0x1F == 4 {
                var e = o + 12
                while e + 8 <= o + size {
                    body(.keyFrame(ssrc: readUInt32(p, e)))
                    e += 8
                }
            } else if type == 205, b0 & 0x1F == 1, size >= 12 {
                let media = readUInt32(p + o, 8)
                var e = o + 12
                while e + 4 <= o + size {
                    let pid = readUInt16(p, e), mask = readUInt16(p, e + 2)
                    body(.nack(ssrc: media, sequence: pid))
                    for bit in 0..<16 where mask & (1 << bit) != 0 { body(.nack(ssrc: media, sequence: pid &+ UInt16(bit + 1))) }
                    e += 4
                }
            }
            o += size
        }
    }
}

/// The last 512 packets of each of a publisher's video streams, as sent
/// before SRTP, to answer NACKs with RTX (RFC 4588).
final class PacketHistory {
    static let depth = 512, slotSize = 1500
    private let memory: UnsafeMutableRawPointer
    private let lengths: UnsafeMutablePointer<Int32>
    private let sequences: UnsafeMutablePointer<UInt16>
    private let scratch = UnsafeMutableRawPointer.allocate(byteCount: PacketHistory.slotSize + 64, alignment: 8)
    private let count: Int

    init(streams: Int) {
        count = streams * Self.depth
        memory = .allocate(byteCount: count * Self.slotSize, alignment: 64)
        lengths = .allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
        sequences = .allocate(capacity: count)
        sequences.initialize(repeating: 0, count: count)
    }

    deinit {
        memory.deallocate()
        lengths.deallocate()
        sequences.deallocate()
        scratch.deallocate()
    }

    private func slot(_ stream: Int, _ sequence: UInt16) -> Int { stream * Self.depth + Int(sequence) % Self.depth }

    func keep(stream: Int, sequence: UInt16, _ packet: UnsafeRawPointer, length: Int) {
        guard length <= Self.slotSize else { return }
        let i = slot(stream, sequence)
        (memory + i * Self.slotSize).copyMemory(from: packet, byteCount: length)
        lengths[i] = Int32(length)
        sequences[i] = sequence
    }

    /// Sends the kept packet as RTX: the original sequence number ahead of
    /// the payload, the RTX SSRC, payload type and sequence. False when
    /// the packet is no longer kept.
    func sendRtx(stream: Int, sequence: UInt16, rtxSsrc: UInt32, rtxSequence: inout UInt16, srtp: srtp_t?, fd: Int32) -> Bool {
        let i = slot(stream, sequence)
        let length = Int(lengths[i])
        guard length >= 12, sequences[i] == sequence else { return false }
        let original = UnsafeRawPointer(memory + i * Self.slotSize)
        let payload = LoadGenerator.payloadOffset(original)
        guard payload <= length else { return false }
        scratch.copyMemory(from: original, byteCount: payload)
        scratch.storeBytes(of: (original.load(fromByteOffset: 1, as: UInt8.self) & 0x80) | LoadGenerator.rtxPayloadType, toByteOffset: 1, as: UInt8.self)
        scratch.storeBytes(of: rtxSequence.bigEndian, toByteOffset: 2, as: UInt16.self)
        scratch.storeBytes(of: rtxSsrc.bigEndian, toByteOffset: 8, as: UInt32.self)
        scratch.storeBytes(of: sequence.bigEndian, toByteOffset: payload, as: UInt16.self)
        (scratch + payload + 2).copyMemory(from: original + payload, byteCount: length - payload)
        rtxSequence &+= 1
        var size = Int32(length + 2)
        if let srtp, srtp_protect(srtp, scratch, &size) != srtp_err_status_ok { return false }
        return send(fd, scratch, Int(size), 0) == Int(size)
    }
}
