import ArgumentParser
import Configuration
import Foundation
import HummingbirdTLS
import RingSFU

/// Everything `ringsfu serve` runs with, resolved from (highest first)
/// command-line flags, `RINGSFU_*` environment variables and a JSON
/// configuration file (`--config`). One name per setting: the flag
/// `--rtc-min-port` is the file's `"rtcMinPort"` and `RINGSFU_RTC_MIN_PORT`.
struct ServeSettings: Sendable {
    var host = "127.0.0.1"
    var port = 8080
    var workers: Int? = nil
    var pin = false
    var rtcMinPort = 10000
    var rtcMaxPort = 59999
    var logLevel = "info"
    var apiToken: String? = nil
    var adminToken: String? = nil
    var maxMessageBytes = 4 << 20
    var maxQueuedBytes = 16 << 20
    var allowAnyPort = false
    var allowedOrigins: [String] = []
    var dtlsCertificateFile: String? = nil
    var dtlsPrivateKeyFile: String? = nil
    var tlsCertificateFile: String? = nil
    var tlsPrivateKeyFile: String? = nil
    var announcedAddress: String? = nil
    /// Per worker, in worker order ("" = the server-wide one).
    var workerAnnouncedAddresses: [String] = []
    var mediaIp: String? = nil
    var publishToken: String? = nil
    var playToken: String? = nil
    var roomTokens: [String: RoomTokens] = [:]
    var maxTcpConnections = 128
    /// Players of a room on one worker before the room spills onto another.
    var roomPlayersPerWorker = 200
    /// WorkerSettings.coalesceMicroseconds (nil: the library's default).
    var coalesceMicroseconds: Int? = nil
    var shutdownTimeout = 5
    var iceServers = IceServers()
    /// Cluster mode: Redis's HOST:PORT, this node's id, the URL other nodes
    /// and redirected clients reach it at, and the address its pipes listen on.
    var clusterRedis: String? = nil
    var nodeId: String? = nil
    var nodeUrl: String? = nil
    var pipeIp: String? = nil

    /// Reads every setting; throws a `ValidationError` naming the setting
    /// and its three spellings on a value of the wrong type or out of range.
    static func resolve(flags: [AbsoluteConfigKey: ConfigValue], environment: [String: String], configFile: String?) async throws -> ServeSettings {
        // RINGSFU_RTC_MIN_PORT is the key rtcMinPort (the provider maps camelCase to SNAKE_CASE).
        var env: [String: String] = [:]
        for (k, v) in environment where k.hasPrefix("RINGSFU_") { env[String(k.dropFirst(8))] = v }
        var providers: [any ConfigProvider] = [InMemoryProvider(name: "flags", values: flags), EnvironmentVariablesProvider(environmentVariables: env)]
        if let configFile {
            guard FileManager.default.fileExists(atPath: configFile) else { throw ValidationError("the configuration file \(configFile) does not exist") }
            let path = ConfigReader(provider: InMemoryProvider(values: ["filePath": ConfigValue(.string(configFile), isSecret: false)]))
            do { providers.append(try await FileProvider<JSONSnapshot>(config: path)) } catch {
                throw ValidationError("cannot read the configuration file \(configFile): \(error)")
            }
        }
        let r = ConfigReader(providers: providers)
        var s = ServeSettings()
        func read<T>(_ key: String, _ optional: (ConfigKey) -> T?, _ required: (ConfigKey) throws -> T) throws -> T? {
            if let v = optional(ConfigKey(key)) { return v }
            do { return try required(ConfigKey(key)) } catch {
                if String(describing: error).hasPrefix("Missing required config value") { return nil }
                throw ValidationError("setting \(spellings(key)) has a value of the wrong type: \(error)")
            }
        }
        func string(_ k: String, secret: Bool = false) throws -> String? {
            try read(k, { r.string(forKey: $0, isSecret: secret) }, { try r.requiredString(forKey: $0, isSecret: secret) }).flatMap { $0.trimmingSpaces.isEmpty ? nil : $0.trimmingSpaces }
        }
        func int(_ k: String) throws -> Int? { try read(k, { r.int(forKey: $0) }, { try r.requiredInt(forKey: $0) }) }
        func bool(_ k: String) throws -> Bool? { try read(k, { r.bool(forKey: $0) }, { try r.requiredBool(forKey: $0) }) }
        func strings(_ k: String, secret: Bool = false) throws -> [String]? {
            try read(k, { r.stringArray(forKey: $0, isSecret: secret) }, { try r.requiredStringArray(forKey: $0, isSecret: secret) })
        }
        s.host = try string("host") ?? s.host
        s.port = try int("port") ?? s.port
        s.workers = try int("workers")
        s.pin = try bool("pin") ?? s.pin
        s.rtcMinPort = try int("rtcMinPort") ?? s.rtcMinPort
        s.rtcMaxPort = try int("rtcMaxPort") ?? s.rtcMaxPort
        s.logLevel = try string("logLevel") ?? s.logLevel
        s.apiToken = try secret(string("apiToken", secret: true), file: string("apiTokenFile"), name: "apiToken")
        s.adminToken = try secret(string("adminToken", secret: true), file: string("adminTokenFile"), name: "adminToken")
        s.maxMessageBytes = try int("maxMessageBytes") ?? s.maxMessageBytes
        s.maxQueuedBytes = try int("maxQueuedBytes") ?? s.maxQueuedBytes
        s.allowAnyPort = try bool("allowAnyPort") ?? s.allowAnyPort
        s.allowedOrigins = try strings("allowedOrigins") ?? []
        s.dtlsCertificateFile = try string("dtlsCertificateFile")
        s.dtlsPrivateKeyFile = try string("dtlsPrivateKeyFile")
        s.tlsCertificateFile = try string("tlsCertificateFile")
        s.tlsPrivateKeyFile = try string("tlsPrivateKeyFile")
        s.announcedAddress = try string("announcedAddress")
        s.workerAnnouncedAddresses = try strings("workerAnnouncedAddresses") ?? []
        s.mediaIp = try string("mediaIp")
        s.publishToken = try secret(string("publishToken", secret: true), file: nil, name: "publishToken")
        s.playToken = try secret(string("playToken", secret: true), file: nil, name: "playToken")
        s.roomTokens = try parseRoomTokens(strings("roomTokens", secret: true) ?? [])
        s.maxTcpConnections = try int("maxTcpConnections") ?? s.maxTcpConnections
        s.roomPlayersPerWorker = try int("roomPlayersPerWorker") ?? s.roomPlayersPerWorker
        s.coalesceMicroseconds = try int("coalesceMicroseconds")
        s.shutdownTimeout = try int("shutdownTimeout") ?? s.shutdownTimeout
        s.iceServers.urls = try strings("iceServers") ?? []
        s.iceServers.turnSecret = try string("turnSecret", secret: true)
        s.iceServers.credentialLifetime = try int("turnCredentialLifetime") ?? s.iceServers.credentialLifetime
        s.clusterRedis = try string("clusterRedis")
        s.nodeId = try string("nodeId")
        s.nodeUrl = try string("nodeUrl")
        s.pipeIp = try string("pipeIp")
        try s.validate()
        return s
    }

    /// `rtcMinPort` as a flag, a variable and a file key.
    static func spellings(_ key: String) -> String {
        var kebab = "", snake = ""
        for c in key {
            if c.isUppercase { kebab += "-"; snake += "_" }
            kebab += c.lowercased()
            snake += c.uppercased()
        }
        return "--\(kebab) / RINGSFU_\(snake) / \"\(key)\""
    }

    func validate() throws {
        do { _ = try Worker.logLevel(named: logLevel) } catch { throw ValidationError(error.message) }
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("port must be 0 to 65535") }
        guard (1024...65535).contains(rtcMinPort), rtcMinPort <= rtcMaxPort, rtcMaxPort <= 65535 else {
            throw ValidationError("rtc ports: --rtc-min-port must be from 1024 and at most --rtc-max-port (up to 65535)")
        }
        if let workers, !(1...256).contains(workers) { throw ValidationError("--workers takes 1 to 256") }
        guard maxMessageBytes >= 1024, maxQueuedBytes >= maxMessageBytes else {
            throw ValidationError("--max-message-bytes must be at least 1024 and --max-queued-bytes at least as large")
        }
        guard (1...300).contains(shutdownTimeout) else { throw ValidationError("--shutdown-timeout takes 1 to 300 seconds") }
        guard (1...100_000).contains(roomPlayersPerWorker) else { throw ValidationError("--room-players-per-worker takes 1 to 100000") }
        if let us = coalesceMicroseconds, !(0...1000).contains(us) { throw ValidationError("--coalesce-microseconds takes 0 to 1000") }
        if apiToken == nil, !Self.isLoopback(host) {
            throw ValidationError("refusing to listen on \(host) without an API token: anyone who reaches the port could create, consume and close media. Set --api-token (or --api-token-file, or RINGSFU_API_TOKEN), or listen on 127.0.0.1")
        }
        for address in [announcedAddress].compactMap({ $0 }) + workerAnnouncedAddresses.filter({ !$0.isEmpty }) {
            guard address.count <= 253, address.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".:-".contains($0)) }),
                  address != "0.0.0.0", address != "::" else {
                throw ValidationError("--announced-address takes an IP address or a host name that peers can reach, not \"\(address)\"")
            }
        }
        if let workers, workerAnnouncedAddresses.count > workers {
            throw ValidationError("--worker-announced-address given \(workerAnnouncedAddresses.count) times for \(workers) workers")
        }
        for url in iceServers.urls where !IceServers.validate(url) {
            throw ValidationError("--ice-server takes stun:, turn: or turns: URLs, not \"\(url.prefix(60))\"")
        }
        if iceServers.urls.contains(where: { $0.hasPrefix("turn") }), iceServers.turnSecret == nil {
            throw ValidationError("turn: servers in --ice-server need --turn-secret (coturn's static-auth-secret)")
        }
        _ = try clusterSettings()
        guard (60...7 * 86400).contains(iceServers.credentialLifetime) else { throw ValidationError("--turn-credential-lifetime takes 60 s to 7 days") }
        guard (tlsCertificateFile == nil) == (tlsPrivateKeyFile == nil) else {
            throw ValidationError("--tls-certificate-file and --tls-private-key-file go together")
        }
    }

    /// A secret from its value or its file (first line): 16+ characters of
    /// letters, digits and `-._~` (it travels in headers, subprotocols and URLs).
    static func secret(_ value: String?, file: String?, name: String) throws -> String? {
        var value = value
        if value == nil, let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read the \(spellings(name)) file \(file)") }
            value = text.split(whereSeparator: \.isNewline).first.map { String($0).trimmingSpaces }
        }
        guard let secret = value, !secret.isEmpty else { return nil }
        guard secret.count >= 16 else { throw ValidationError("the \(spellings(name)) token must be at least 16 characters") }
        guard secret.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) }) else {
            throw ValidationError("the \(spellings(name)) token may hold letters, digits and - . _ ~ only (it travels in a header, a subprotocol and a URL)")
        }
        return secret
    }

    /// `ROOM:publish:TOKEN` / `ROOM:play:TOKEN` values by room.
    static func parseRoomTokens(_ values: [String]) throws -> [String: RoomTokens] {
        var out: [String: RoomTokens] = [:]
        for v in values {
            let f = v.split(separator: ":", maxSplits: 2).map(String.init)
            guard f.count == 3, Rooms.validName(f[0]), f[1] == "publish" || f[1] == "play" else {
                throw ValidationError("--room-token takes ROOM:publish:TOKEN or ROOM:play:TOKEN, not \"\(v.prefix(40))\"")
            }
            let token = try secret(f[2], file: nil, name: "roomTokens")
            if f[1] == "publish" { out[f[0], default: RoomTokens()].publish = token } else { out[f[0], default: RoomTokens()].play = token }
        }
        return out
    }

    /// The HTTPS/WSS configuration from the PEM files, nil without them.
    func tlsConfiguration() throws -> TLSConfiguration? {
        guard let tlsCertificateFile, let tlsPrivateKeyFile else { return nil }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tlsCertificateFile)
            let key = try NIOSSLPrivateKey(file: tlsPrivateKeyFile, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        } catch {
            throw ValidationError("cannot load the TLS certificate \(tlsCertificateFile) and key \(tlsPrivateKeyFile): \(error)")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Where rooms' media listens: `mediaIp`, else the HTTP host when it is
    /// an address.
    var mediaListenIp: String {
        if let mediaIp { return mediaIp }
        if host == "localhost" { return "127.0.0.1" }
        let isAddress = host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
        return isAddress ? host : "0.0.0.0"
    }
}

extension ServeSettings {
    /// Cluster mode's settings (nil without --cluster-redis), checked.
    func clusterSettings() throws -> ClusterSettings? {
        guard let redis = clusterRedis else { return nil }
        let parts = redis.split(separator: ":")
        guard parts.count == 2, !parts[0].isEmpty, let redisPort = Int(parts[1]), (1...65535).contains(redisPort) else {
            throw ValidationError("--cluster-redis takes HOST:PORT (Redis's address), not \"\(redis.prefix(60))\"")
        }
        let wildcard = host == "0.0.0.0" || host == "::"
        guard let url = nodeUrl ?? (wildcard ? nil : "http://\(host.contains(":") ? "[\(host)]" : host):\(port)") else {
            throw ValidationError("--cluster-redis with --host \(host) needs --node-url: the http(s)://host:port other nodes and redirected clients reach this node at")
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.count <= 200 else {
            throw ValidationError("--node-url takes http(s)://host:port, not \"\(url.prefix(60))\"")
        }
        let media = mediaListenIp
        guard let pipe = pipeIp ?? (media == "0.0.0.0" || media == "::" ? announcedAddress : media) else {
            throw ValidationError("--cluster-redis needs --pipe-ip (the address other nodes send piped media to) when media listens on \(media)")
        }
        let id = nodeId ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        // Node ids go into Redis keys and logs: the rule of room names.
        guard Rooms.validName(id) else {
            throw ValidationError("--node-id takes 1 to 64 of A-Z a-z 0-9 - _ .")
        }
        return ClusterSettings(redisHost: String(parts[0]), redisPort: redisPort, nodeId: id, nodeUrl: url, pipeIp: pipe, token: apiToken ?? adminToken)
    }
}
