import RingSFUForwarder
import RingSFUCShims
#if canImport(Glibc)
import Glibc
#endif

/// Coverage-guided fuzzing of the forwarder's parsers (libFuzzer), and a
/// replayer of saved inputs for the regular test run.
///
/// The first input byte picks the parser, the rest is the datagram. Beyond
/// "never traps", every successful parse is checked for the promises the
/// forwarder relies on: offsets and lengths inside the buffer.

/// Parses one input with every parser it selects; traps only when a parser
/// breaks a promise (which is what the fuzzer is looking for).
func fuzzOne(_ input: UnsafeRawBufferPointer) {
    guard let first = input.first else { return }
    let count = input.count - 1
    // A private, writable copy: some steps rewrite in place, and ASan
    // catches any read past `count`.
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
    defer { buffer.deallocate() }
    if count > 0 { buffer.copyMemory(from: input.baseAddress! + 1, byteCount: count) }
    _ = PacketClass.classify(buffer, count: count)
    // 220-229: SDP; 230-235: send-side estimation and layer allocation,
    // 236-239: probe planning and pacing;
    // 240 and up: the other stateful units, driven by operation sequences.
    if (220..<230).contains(first) {
        sdp(buffer, count)
        return
    }
    if (230..<240).contains(first) {
        if first >= 236 { probing(buffer, count) } else { sendSideEstimator(buffer, count) }
        return
    }
    if first >= 240 {
        switch first % 3 {
        case 0: rewriter(buffer, count)
        case 1: nackGenerator(buffer, count)
        default: simulcastSelector(buffer, count)
        }
        return
    }
    switch first % 6 {
    case 0: rtp(buffer, count)
    case 1: rtcp(buffer, count)
    case 2: stun(buffer, count)
    case 3: keyFrames(buffer, count)
    case 5: transportCcRecorder(buffer, count)
    default:
        rtp(buffer, count)
        rtcp(buffer, count)
    }
}

func promise(_ condition: Bool, _ what: StaticString) {
    if !condition { fatalError("broken promise: \(what)") }
}

func rtp(_ p: UnsafeMutableRawPointer, _ count: Int) {
    guard let h = try? RtpHeader.parse(p, count: count) else { return }
    promise(h.payloadOffset >= RtpHeader.minimumSize && h.payloadLength >= 0, "payload offset")
    promise(h.payloadOffset + h.payloadLength + h.paddingLength <= count, "payload within packet")
    if let ext = h.extensionOffset { promise(ext + 4 + h.extensionLength <= h.payloadOffset, "extensions before payload") }
    var elements = 0
    try? RtpHeaderExtensions.forEach(p, h) { _, offset, length in
        promise(offset >= 0 && offset + length <= h.payloadOffset, "extension element within block")
        elements += 1
    }
    // Rewrite ids as a consumer's remapping would: some kept, some dropped.
    var map = ExtensionIdMap()
    for id in 1..<15 where id % 3 != 0 { map.table[id] = UInt8(15 - id) }
    try? RtpHeaderExtensions.remapIds(p, h, map)
    // The packet must still parse after an in-place rewrite.
    promise((try? RtpHeader.parse(p, count: count)) != nil, "still parses after remapping")
    for codec in [KeyFrameCodec.vp8, .vp9, .h264, .h265, .av1] {
        _ = KeyFrameDetector.isKeyFrame(codec, p + h.payloadOffset, count: h.payloadLength)
    }
    // A VP8 consumer dropping this picture's temporal layer.
    if let (tid, _) = Vp8EncodingContext.temporalLayer(p + h.payloadOffset, count: h.payloadLength) {
        promise(tid <= 3, "temporal layer id is two bits")
        var context = Vp8EncodingContext()
        context.dropPicture(p + h.payloadOffset, count: h.payloadLength)
        var filter = TemporalLayerFilter(target: 0)
        _ = filter.forward(tid: tid, pictureStart: true)
    }
    // Adding a transport-wide element (as for a publisher without it), in a
    // copy with a little room: it still parses and the payload is unchanged.
    guard let again = try? RtpHeader.parse(p, count: count) else { return }
    let room = 8
    let copy = UnsafeMutableRawPointer.allocate(byteCount: count + room, alignment: 8)
    defer { copy.deallocate() }
    copy.copyMemory(from: p, byteCount: count)
    let id = UInt8(count % 16 == 0 ? 20 : count % 16)
    if let (size, offset) = RtpHeaderExtensions.insert(copy, again, id: id, value: 0x1234, size: count, capacity: count + room) {
        promise(size <= count + room && offset + 2 <= size, "insertion within capacity")
        let after = try? RtpHeader.parse(copy, count: size)
        promise(after != nil, "still parses after insertion")
        if let after {
            promise(after.payloadLength == again.payloadLength && memcmp(copy + after.payloadOffset, p + again.payloadOffset, again.payloadLength) == 0,
                    "payload unchanged by insertion")
        }
    }
}

func rtcp(_ p: UnsafeMutableRawPointer, _ count: Int) {
    try? Rtcp.forEach(p, count: count) { (v) throws(RtcpError) in
        promise(v.offset >= 0 && v.length >= 4 && v.offset + v.length <= count, "RTCP packet within datagram")
        _ = v.senderSsrc
        switch v.type {
        case RtcpType.sr:
            _ = try? Rtcp.senderInfo(v)
            try? Rtcp.forEachReportBlock(v) { _ in }
        case RtcpType.rr:
            try? Rtcp.forEachReportBlock(v) { _ in }
        case RtcpType.sdes:
            try? Rtcp.forEachSdesItem(v) { _, _, offset, length in
                promise(offset >= v.offset && offset + length <= v.offset + v.length, "SDES item within packet")
            }
        case RtcpType.bye:
            try? Rtcp.forEachByeSsrc(v) { _ in }
        case RtcpType.rtpfb:
            _ = try? Rtcp.feedbackSsrcs(v)
            try? Rtcp.forEachNackedSequence(v) { _ in }
            _ = try? Rtcp.transportCc(v)
        case RtcpType.psfb:
            _ = try? Rtcp.feedbackSsrcs(v)
            try? Rtcp.forEachFirEntry(v) { _, _ in }
            _ = try? Rtcp.remb(v) { _ in }
        default:
            break
        }
    }
}

/// Stateful: the input is a script of arrivals (3 bytes each: sequence
/// number, then a time step that may go backwards) with feedback written
/// now and then into buffers of varying size. Every feedback packet must
/// fit its buffer, parse, and report a status for each number it covers.
func transportCcRecorder(_ p: UnsafeMutableRawPointer, _ count: Int) {
    let ring = UnsafeMutablePointer<UInt64>.allocate(capacity: TransportCcRecorder.capacity)
    defer { ring.deallocate() }
    var recorder = TransportCcRecorder(ring: ring)
    let out = UnsafeMutableRawPointer.allocate(byteCount: 1500, alignment: 8)
    defer { out.deallocate() }
    var now: Int64 = 1_000_000_000
    var i = 0
    while i + 3 <= count {
        let seq = UInt16(p.load(fromByteOffset: i, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: i + 1, as: UInt8.self))
        let step = Int8(bitPattern: p.load(fromByteOffset: i + 2, as: UInt8.self))
        // Mostly forward in 100 us steps, sometimes jumping by seconds either way.
        now += step == -128 ? 20_000_000_000 : Int64(step) * (step < -100 ? 50_000_000 : 100_000)
        recorder.record(sequence: seq, arrivalNs: now)
        promise(recorder.pending <= TransportCcRecorder.capacity, "recorder bounded")
        if step & 0x0F == 0 {
            let capacity = 32 + Int(UInt8(bitPattern: step)) * 4
            for _ in 0..<64 {
                let n = recorder.writeFeedback(out, capacity: capacity, senderSsrc: 1)
                if n == 0 { break }
                promise(n <= capacity && n % 4 == 0, "feedback within its buffer")
                var parsed = false
                try? Rtcp.forEach(out, count: n) { (v) throws(RtcpError) in
                    var statuses = 0
                    let h = try Rtcp.forEachTransportCcPacket(v) { _, _ in statuses += 1 }
                    promise(statuses == Int(h.statusCount) && h.statusCount > 0, "feedback statuses")
                    parsed = true
                }
                promise(parsed, "feedback parses")
            }
        }
        i += 3
    }
}

/// A consumer's numbering under random syncs, drops, in-order and late
/// packets: outputs of newer inputs move forward, a forwarded packet's
/// output maps back to it while it is recent, drops are never numbered.
func rewriter(_ p: UnsafeMutableRawPointer, _ count: Int) {
    var r = RtpRewriter()
    var input: UInt16 = 0
    var now: Int64 = 1_000_000_000
    var recent: [(UInt16, UInt16)] = []
    var lastOutput: UInt16? = nil
    var dropsSinceForwarded = 0
    operations(p, count) { op, arg in
        now += Int64(arg) * 1_000_000
        switch op % 5 {
        case 0:
            input = UInt16(arg) << 8 | UInt16(op)
            r.sync(input: input, timestamp: UInt32(arg) * 3000, continueTimestamps: op & 0x80 != 0, nowNs: now, clockRate: 90_000)
            recent.removeAll()
            dropsSinceForwarded = 0
        case 1:
            input &+= 1 + UInt16(arg % 4)
            r.drop(input)
            dropsSinceForwarded += 1
            promise(r.output(for: input) == nil || !r.started, "a drop is never numbered")
        case 2, 3:
            input &+= 1 + UInt16(arg % 3)
            guard let o = r.output(for: input) else {
                promise(!r.started, "the newest input is numbered")
                return
            }
            if let lastOutput { promise(RtpRewriter.newer(o, than: lastOutput) || recent.isEmpty, "outputs move forward") }
            lastOutput = o
            r.sent(output: o, timestamp: 0, nowNs: now)
            dropsSinceForwarded = 0
            recent.append((input, o))
            if recent.count > 8 { recent.removeFirst() }
        default:
            // A late packet and a NACK for a recent one.
            let late = input &- UInt16(arg % 40)
            _ = r.output(for: late)
            // (Up to 16 drops later; older ones are forgotten by design.)
            if let (i0, o) = recent.last, dropsSinceForwarded < RtpRewriter.maxDrops {
                promise(r.input(forOutput: o) == i0, "the newest forwarded output maps back")
            }
        }
        promise(r.dropCount <= RtpRewriter.maxDrops, "drops bounded")
    }
}

/// The NACK list under random losses, arrivals and timer ticks: bounded,
/// nothing asked for before the reorder tolerance or more than the retries.
func nackGenerator(_ p: UnsafeMutableRawPointer, _ count: Int) {
    var g = NackGenerator()
    var list = InlineArray<64, UInt16>(repeating: 0)
    var now: Int64 = 0
    var seq: UInt16 = 0
    operations(p, count) { op, arg in
        now += Int64(arg) * 1_000_000
        switch op % 3 {
        case 0:
            let n = Int(arg % 70)
            if n > 0 { _ = g.lost(from: seq, count: n, nowNs: now) }
            seq &+= UInt16(n) &+ 1
        case 1:
            _ = g.arrived(seq &- UInt16(arg))
        default:
            let n = g.due(nowNs: now, into: &list)
            promise(n <= NackGenerator.capacity, "due list bounded")
        }
        promise(g.count <= NackGenerator.capacity, "NACK list bounded")
    }
}

/// The simulcast choice under random liveness, preferences and packets:
/// the target never exceeds the preference, the current layer only changes
/// on the target's key frame.
func simulcastSelector(_ p: UnsafeMutableRawPointer, _ count: Int) {
    var s = SimulcastSelector(preferred: 2, nowNs: 0)
    var now: Int64 = 0
    var live: UInt8 = 0b111
    operations(p, count) { op, arg in
        now += Int64(arg) * 10_000_000
        let layer = Int(arg % 3)
        switch op % 4 {
        case 0:
            live = arg & 0b111
        case 1:
            s.preferred = layer
            _ = s.retarget(nowNs: now, syncRequired: op & 0x80 != 0) { live & (1 << $0) == 0 }
        default:
            let before = s.current
            let key = op & 0x40 != 0
            if s.shouldRetarget(layer: layer, nowNs: now, layerStartNs: 0, targetSilent: { live & (1 << s.target) == 0 }) {
                _ = s.retarget(nowNs: now, syncRequired: false) { live & (1 << $0) == 0 }
            }
            let target = s.target
            let d = s.decide(layer: layer, syncRequired: false) { key }
            if s.current != before { promise(key && layer == target, "switches only on the target's key frame") }
            if case .forward = d { promise(layer == before, "forwards only the current layer") }
        }
        promise(s.target <= s.preferred && s.target >= 0, "target within the preference")
    }
}

/// Calls `body` with each (operation, argument) byte pair of the input.
func operations(_ p: UnsafeMutableRawPointer, _ count: Int, _ body: (UInt8, UInt8) -> Void) {
    var i = 0
    while i + 2 <= count {
        body(p.load(fromByteOffset: i, as: UInt8.self), p.load(fromByteOffset: i + 1, as: UInt8.self))
        i += 2
    }
}

func stun(_ p: UnsafeMutableRawPointer, _ count: Int) {
    guard let m = try? StunMessage.parse(p, count: count) else { return }
    promise(m.length == count, "STUN length")
    if let u = m.username { promise(u.offset >= StunMessage.headerSize && u.offset + u.length <= count, "USERNAME within message") }
    if let i = m.integrityOffset { promise(i + 24 <= count, "MESSAGE-INTEGRITY within message") }
    if let f = m.fingerprintOffset { promise(f + 8 <= count, "FINGERPRINT within message") }
    let key: [UInt8] = Array("fuzzpassword".utf8)
    _ = key.withUnsafeBytes { m.checkIntegrity(p, key: $0) }
    _ = m.checkFingerprint(p)
}

func keyFrames(_ p: UnsafeMutableRawPointer, _ count: Int) {
    for codec in [KeyFrameCodec.vp8, .vp9, .h264, .h265, .av1] {
        _ = KeyFrameDetector.isKeyFrame(codec, p, count: count)
    }
    _ = SvcLayers.vp9(p, count: count)
    // AV1 dependency descriptors, each prefixed by its length, with the
    // template structure carried from one to the next.
    var templates = DependencyTemplates()
    var i = 0
    while i < count {
        let n = min(Int(p.load(fromByteOffset: i, as: UInt8.self)), count - i - 1)
        if let l = DependencyDescriptor.parse(p + i + 1, count: n, templates: &templates) {
            promise(l.spatial < 4 && l.temporal < 8, "layers within what AV1 allows")
        }
        promise(templates.count <= 64, "at most 64 templates")
        i += 1 + n
    }
}

/// libFuzzer's callback (exported under its well-known name too, for
/// libFuzzer's own main).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

/// Built with `-DFUZZING -sanitize=fuzzer` (scripts/fuzz.sh): the libFuzzer
/// driver with its usual options. Otherwise: replays saved inputs (files,
/// or every file of a directory) through the same checks,
/// `RingSFUFuzz FILE|DIR...`.
@main
struct FuzzMain {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzzerTestOneInput($0, $1) })
        #else
        var inputs = 0
        for argument in CommandLine.arguments.dropFirst() {
            for path in files(argument) {
                guard let bytes = read(path) else {
                    print("cannot read \(path)")
                    exit(1)
                }
                bytes.withUnsafeBytes { fuzzOne($0) }
                inputs += 1
            }
        }
        print("replayed \(inputs) inputs: no parser broke a promise")
        #endif
    }

    static func files(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [path] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { out.append(path + "/" + name) }
        }
        return out.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}
