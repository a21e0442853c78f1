import Foundation
import Testing
@testable import RingSFUServer

/// The cluster's Redis side: the RESP parser on good, partial and hostile
/// replies, and room claims against a real redis-server on loopback.
@Suite("Cluster coordination")
struct ClusterTests {
    func parse(_ text: String) throws(RespError) -> (RespValue, Int)? { try Resp.parse(Array(text.utf8)[...]) }

    @Test func repliesParseWhole() throws {
        #expect(try parse("+OK\r\n")?.0 == .simple("OK"))
        #expect(try parse("-ERR wrong\r\n")?.0 == .error("ERR wrong"))
        #expect(try parse(":42\r\n")?.0 == .integer(42))
        #expect(try parse("$5\r\nhello\r\n")?.0 == .bulk("hello"))
        #expect(try parse("$-1\r\n")?.0 == .bulk(nil))
        #expect(try parse("*2\r\n$1\r\na\r\n:1\r\n")?.0 == .array([.bulk("a"), .integer(1)]))
        // A reply followed by the next: only the first is taken.
        #expect(try parse("+OK\r\n:1\r\n")?.1 == 5)
        #expect(Resp.encode(["GET", "k"]) == Array("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".utf8))
    }

    @Test func partialRepliesWaitForMore() throws {
        let full = "*2\r\n$5\r\nhello\r\n$3\r\nabc\r\n"
        let bytes = Array(full.utf8)
        for cut in 0..<bytes.count { #expect(try Resp.parse(bytes[0..<cut]) == nil, "cut at \(cut)") }
        #expect(try Resp.parse(bytes[...])?.1 == bytes.count)
    }

    @Test func hostileRepliesAreRefused() {
        for bad in ["$99999999999\r\n", "*1000001\r\n", "?x\r\n", ":12a\r\n", "$3\r\nabcXY", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"] {
            #expect(throws: RespError.self, "\(bad.debugDescription)") { _ = try parse(bad) }
        }
        // A header line that never ends is refused once over 64 KB, not buffered forever.
        #expect(throws: RespError.self) { _ = try Resp.parse((Array("+".utf8) + [UInt8](repeating: 65, count: 70_000))[...]) }
        // Random bytes never trap.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0..<64, using: &rng)
            let prefix: [UInt8] = [UInt8(ascii: "*"), UInt8(ascii: "$"), UInt8(ascii: "+"), UInt8(ascii: ":")].randomElement(using: &rng).map { [$0] } ?? []
            let junk = prefix + (0..<n).map { _ in [13, 10, 48, 49, 45, 36, 42, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)! }
            _ = try? Resp.parse(junk[...])
        }
    }

    /// A redis-server of the test's own on a free loopback port.
    final class RedisServer {
        let port: Int
        let process = Process()
        init() throws {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            port = Int(UInt16(bigEndian: addr.sin_port))
            close(s)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
            process.arguments = ["--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        /// Asks the server to exit (SHUTDOWN), then reaps it. (Not
        /// `waitUntilExit`: it runs a run loop, which hangs on a concurrency thread.)
        func stop() async {
            _ = try? await RedisClient(host: "127.0.0.1", port: port).command("SHUTDOWN", "NOSAVE")
            let pid = process.processIdentifier
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    func node(_ id: String, port: Int) -> ClusterNode {
        // Records live a minute here: the suites run in parallel on one actor,
        // and a record must not expire between two steps (expiry is Redis's;
        // the take-over is tested by deleting the record).
        ClusterNode(settings: ClusterSettings(redisHost: "127.0.0.1", redisPort: port, nodeId: id, nodeUrl: "http://127.0.0.1:1/\(id)", pipeIp: "127.0.0.1",
                                              nodeTtlMs: 60_000, roomTtlMs: 60_000))
    }

    func ready(_ port: Int) async throws {
        let client = RedisClient(host: "127.0.0.1", port: port)
        for _ in 0..<50 {
            if (try? await client.command("PING")) == .simple("PONG") { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("redis-server did not start")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/redis-server")))
    func roomsAreHomedOnceAndReHomedWhenTheHomeDies() async throws {
        let redis = try RedisServer()
        do { try await homing(port: redis.port) } catch { Issue.record(error) }
        await redis.stop()
    }

    func homing(port: Int) async throws {
        try await ready(port)
        let a = node("a", port: port), b = node("b", port: port)
        await a.heartbeat(rooms: [], players: 0)
        await b.heartbeat(rooms: [], players: 0)
        #expect(await a.nodes().map(\.id) == ["a", "b"])
        // a claims the room; b sees a as its home and cannot take it.
        #expect(await a.claim(room: "hall") == .here)
        guard case .node(let home)? = await b.home(of: "hall"), case .node = await b.claim(room: "hall") else {
            Issue.record("b should see the room homed on a")
            return
        }
        #expect(home.id == "a" && home.url == "http://127.0.0.1:1/a")
        // a's record goes (it died: it no longer refreshes): b takes the room over.
        _ = try await RedisClient(host: "127.0.0.1", port: port).command("DEL", "ringsfu:node:a")
        #expect(await b.claim(room: "hall") == .here)
        #expect(await a.home(of: "hall").map { if case .node(let n) = $0 { n.id } else { "a" } } == "b")
        // A heartbeat without the room releases b's claim; a leaving clears its record.
        await b.heartbeat(rooms: [], players: 0)
        #expect(await a.home(of: "hall") == nil)
        await b.leave()
        #expect(await a.nodes().map(\.id) == [])
    }

    @Test func withoutRedisANodeServesLocallyAndSaysSo() async throws {
        // A port nothing listens on: refused at once, the node serves alone.
        let n = node("alone", port: 1)
        #expect(await n.claim(room: "hall") == .here)
        #expect(await n.home(of: "hall") == nil)
        #expect(await n.redisUp == false)
        #expect(await n.lastError?.contains("connect") == true)
        // The client itself answers at once (timed without the entities'
        // actor, which the parallel suites keep busy).
        let started = ContinuousClock.now
        await #expect(throws: RespError.self) { _ = try await RedisClient(host: "127.0.0.1", port: 1).command("PING") }
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}
