import ArgumentParser
import Foundation
import RingSFUCShims
import RingSFUForwarder

/// Protect/unprotect cost per packet for each suite, with libsrtp's stock
/// (NSS-backed on Debian) types and with the OpenSSL-backed replacements,
/// in the same run.
struct SrtpBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "srtp", abstract: "SRTP protect/unprotect micro-benchmark: stock libsrtp2 types against the OpenSSL-backed ones.")

    @Option(help: "Packets per measurement.")
    var packets = 20_000

    @Option(help: "RTP packet size in bytes (header included).")
    var size = 1200

    func run() throws {
        print("packets=\(packets) size=\(size) bytes; microseconds per packet on one thread (each figure includes one \(size)-byte copy)")
        print("| suite | stock protect | OpenSSL protect | ratio | stock unprotect | OpenSSL unprotect | ratio |")
        print("|---|---|---|---|---|---|---|")
        for suite in SrtpCryptoSuite.allCases {
            let (sp, su) = try measure(suite, openssl: false)
            let (op, ou) = try measure(suite, openssl: true)
            func f(_ v: Double) -> String { String(format: "%.2f", v) }
            print("| \(suite.rawValue) | \(f(sp)) | \(f(op)) | \(f(op / sp)) | \(f(su)) | \(f(ou)) | \(f(ou / su)) |")
        }
    }

    /// Returns (protect, unprotect) microseconds per packet.
    func measure(_ suite: SrtpCryptoSuite, openssl: Bool) throws -> (Double, Double) {
        try SrtpLibrary.initialize(openssl: openssl)
        let key = (0..<suite.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let out = try SrtpSession(suite: suite, key: key, direction: .outbound)
        let inb = try SrtpSession(suite: suite, key: key, direction: .inbound)
        let slot = size + SrtpSession.maxTrailer
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: slot * packets, alignment: 64)
        defer { buffer.deallocate() }
        var lengths = [Int](repeating: 0, count: packets)
        let template = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { template.deallocate() }
        for i in 0..<size { template.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
        template.storeBytes(of: UInt8(0x80), toByteOffset: 0, as: UInt8.self)
        template.storeBytes(of: UInt8(96), toByteOffset: 1, as: UInt8.self)
        template.storeBytes(of: UInt32(0x11223344).bigEndian, toByteOffset: 8, as: UInt32.self)
        // Protect: copy the plaintext into a hot slot and encrypt it in
        // place, as the forwarder does per consumer (64 slots in rotation).
        let hot = 64
        let work = UnsafeMutableRawPointer.allocate(byteCount: slot * hot, alignment: 64)
        defer { work.deallocate() }
        let t0 = rsfu_monotonic_ns()
        for i in 0..<packets {
            let p = work + (i % hot) * slot
            p.copyMemory(from: template, byteCount: size)
            p.storeBytes(of: UInt16(truncatingIfNeeded: i).bigEndian, toByteOffset: 2, as: UInt16.self)
            var len = size
            try out.protect(p, length: &len, capacity: slot)
            lengths[i] = len
            // Keep every protected packet for the unprotect pass (not timed
            // separately: a copy of the same size as the plaintext copy).
            (buffer + i * slot).copyMemory(from: p, byteCount: len)
        }
        let t1 = rsfu_monotonic_ns()
        // Unprotect: each packet lands in a hot slot (like a receive
        // buffer) and is decrypted in place.
        for i in 0..<packets {
            let p = work + (i % hot) * slot
            p.copyMemory(from: buffer + i * slot, byteCount: lengths[i])
            var len = lengths[i]
            try inb.unprotect(p, length: &len)
        }
        let t2 = rsfu_monotonic_ns()
        return (Double(t1 - t0) / 1000 / Double(packets), Double(t2 - t1) / 1000 / Double(packets))
    }
}
