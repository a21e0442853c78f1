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

    /// The requests of a compound packet (the forwarder's RTCP reader):
    /// PLIs, FIRs and generic NACKs; stops at the first malformed part.
    static func forEachRequest(_ p: UnsafeRawPointer, count: Int, _ body: (Request) -> Void) {
        try? Rtcp.forEach(p, count: count) { (v) throws(RtcpError) in
            switch v.type {
            case RtcpType.psfb where v.count == RtcpFormat.pli:
                body(.keyFrame(ssrc: try Rtcp.feedbackSsrcs(v).media))
            case RtcpType.psfb where v.count == RtcpFormat.fir:
                try Rtcp.forEachFirEntry(v) { ssrc, _ in body(.keyFrame(ssrc: ssrc)) }
            case RtcpType.rtpfb where v.count == RtcpFormat.nack:
                let media = try Rtcp.feedbackSsrcs(v).media
                try Rtcp.forEachNackedSequence(v) { body(.nack(ssrc: media, sequence: $0)) }
            default:
                break
            }
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
        scratch.copyMemory(from: memory + i * Self.slotSize, byteCount: length)
        // The forwarder's RTX writer: the OSN ahead of the payload, RTX SSRC, payload type and sequence.
        guard let header = try? RtpHeader.parse(scratch, count: length) else { return false }
        let wrapped = Rtx.wrap(scratch, size: length, capacity: Self.slotSize, header, rtxPayloadType: LoadGenerator.rtxPayloadType,
                               rtxSsrc: rtxSsrc, rtxSequence: rtxSequence)
        guard wrapped > 0 else { return false }
        rtxSequence &+= 1
        var size = Int32(wrapped)
        if let srtp, srtp_protect(srtp, scratch, &size) != srtp_err_status_ok { return false }
        return send(fd, scratch, Int(size), 0) == Int(size)
    }
}
