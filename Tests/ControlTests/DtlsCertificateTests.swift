import Testing
import Foundation
@testable import RingSFU

/// WorkerSettings' dtlsCertificateFile / dtlsPrivateKeyFile: a certificate
/// made by the openssl tool is what every worker presents; bad files are
/// refused with the field named.
@Suite("DTLS certificate files") @RingSFUActor
struct DtlsCertificateTests {
    /// Runs the openssl tool; returns its standard output.
    func openssl(_ args: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = args
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "openssl \(args.first ?? "")")
        return String(decoding: data, as: UTF8.self)
    }

    /// A fresh directory with an ECDSA P-256 key and its self-signed certificate.
    func makeCertificate() throws -> (dir: URL, certificate: String, key: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ringsfu-dtls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let certificate = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        _ = try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", key, "-out", certificate, "-days", "30", "-subj", "/CN=ringsfu-test"])
        return (dir, certificate, key)
    }

    func settings(_ certificate: String?, _ key: String?) -> WorkerSettings {
        var s = WorkerSettings(logLevel: "warning", rtcMinPort: 40000, rtcMaxPort: 49999, maxTransports: 8, maxProducers: 8, maxConsumers: 8)
        s.dtlsCertificateFile = certificate
        s.dtlsPrivateKeyFile = key
        return s
    }

    @Test func everyWorkerPresentsTheGivenCertificate() async throws {
        let files = try makeCertificate()
        defer { try? FileManager.default.removeItem(at: files.dir) }
        // "sha256 Fingerprint=AB:CD:..." (the label's case varies by version).
        let printed = try openssl(["x509", "-in", files.certificate, "-noout", "-fingerprint", "-sha256"])
        let expected = try #require(printed.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        #expect(expected.count == 95)
        for _ in 0..<2 {
            let worker = try await Worker.create(settings(files.certificate, files.key))
            let router = try worker.createRouter(mediaCodecs: [opus])
            let t = try router.createWebRtcTransport(WebRtcTransportOptions(listenInfos: [loopback]))
            let sha256 = t.dtlsParameters.fingerprints.first { $0.algorithm == "sha-256" }?.value
            #expect(sha256?.uppercased() == expected)
            worker.close()
        }
    }

    @Test func badFilesAreRefusedWithTheFieldNamed() async throws {
        let files = try makeCertificate(), other = try makeCertificate()
        defer { try? FileManager.default.removeItem(at: files.dir); try? FileManager.default.removeItem(at: other.dir) }
        func refusal(_ s: WorkerSettings) async -> String? {
            do {
                let worker = try await Worker.create(s)
                worker.close()
                return nil
            } catch {
                guard case .invalidArgument(let message) = error else { return "not an invalid argument: \(error)" }
                return message
            }
        }
        #expect(await refusal(settings(files.certificate, nil))?.contains("go together") == true)
        #expect(await refusal(settings(files.dir.appendingPathComponent("missing.pem").path, files.key))?.contains("dtlsCertificateFile") == true)
        // A key that is not the certificate's, and a key given as the certificate.
        #expect(await refusal(settings(files.certificate, other.key))?.contains("matching private key") == true)
        #expect(await refusal(settings(files.key, files.key))?.contains("dtlsCertificateFile") == true)
    }
}
