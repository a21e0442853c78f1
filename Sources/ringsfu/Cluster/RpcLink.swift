import Foundation
import HummingbirdWSClient
import Logging
import RingSFU
import Synchronization

/// A JSON-RPC client of another node's `/rpc`: calls with a timeout,
/// notifications to a handler, and one call back when the connection ends
/// (the other node left, or `close()`). Its entities on the other node
/// close with the connection: that node's session cleans up after us.
final class RpcLink: Sendable {
    struct Failure: Error, CustomStringConvertible { var description: String }

    private struct State {
        var writer: WebSocketOutboundWriter?
        var pending: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
        var nextId = 1
        var ended = false
    }

    private let state = Mutex(State())
    let url: String
    private let token: String?
    private let onNotification: @Sendable (String, JSONValue) -> Void
    private let onEnd: @Sendable (String) -> Void

    init(url: String, token: String?, onNotification: @escaping @Sendable (String, JSONValue) -> Void, onEnd: @escaping @Sendable (String) -> Void) {
        self.url = url
        self.token = token
        self.onNotification = onNotification
        self.onEnd = onEnd
    }

    /// Connects (within 3 s); the connection then runs on its own task.
    func start() async throws {
        let connected = AsyncStream<Result<Void, Failure>>.makeStream()
        // Pings every 2 s; one unanswered ends the link: a home node that
        // vanished (a partition, a frozen host) is noticed within ~4 s
        // even when no TCP close ever arrives.
        var config = WebSocketClientConfiguration(maxFrameSize: 1 << 22, autoPing: .enabled(timePeriod: .seconds(2)))
        if let token { config.additionalHeaders[.authorization] = "Bearer \(token)" }
        let url = url
        Task { [self] in
            var reason = "connection closed"
            do {
                try await WebSocketClient.connect(url: url, configuration: config, logger: Logger(label: "ringsfu.cluster.link")) { [self] inbound, outbound, _ in
                    state.withLock { $0.writer = outbound }
                    connected.continuation.yield(.success(()))
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case .text(let text) = message,
                              let msg = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { continue }
                        if let id = msg["id"]?.numberValue {
                            let waiter = state.withLock { $0.pending.removeValue(forKey: Int(id)) }
                            if let error = msg["error"] {
                                waiter?.resume(throwing: Failure(description: error["message"]?.stringValue ?? "\(error)"))
                            } else {
                                waiter?.resume(returning: msg["result"] ?? .null)
                            }
                        } else if let method = msg["method"]?.stringValue {
                            onNotification(method, msg["params"] ?? .null)
                        }
                    }
                }
            } catch {
                reason = "\(error)"
                connected.continuation.yield(.failure(Failure(description: "cannot reach \(url): \(error)")))
            }
            connected.continuation.finish()
            let waiters = state.withLock { s in
                s.ended = true
                s.writer = nil
                defer { s.pending = [:] }
                return Array(s.pending.values)
            }
            for w in waiters { w.resume(throwing: Failure(description: "link to \(url) ended: \(reason)")) }
            onEnd(reason)
        }
        let first = try await withThrowingTaskGroup(of: Result<Void, Failure>?.self) { group in
            group.addTask { await connected.stream.first { _ in true } ?? .failure(Failure(description: "link to \(url) ended")) }
            group.addTask {
                try await Task.sleep(for: .seconds(3))
                return nil
            }
            let r = try await group.next() ?? nil
            group.cancelAll()
            return r
        }
        switch first {
        case .success?: return
        case .failure(let f)?: throw f
        case nil:
            close()
            throw Failure(description: "no connection to \(url) within 3 s")
        }
    }

    /// A call, answered within 5 s.
    func call(_ method: String, _ params: [String: JSONValue]) async throws -> JSONValue {
        let (id, writer) = try state.withLock { s throws -> (Int, WebSocketOutboundWriter) in
            guard !s.ended, let w = s.writer else { throw Failure(description: "link to \(url) is not connected") }
            defer { s.nextId += 1 }
            return (s.nextId, w)
        }
        let request = JSONValue.object(["jsonrpc": .string("2.0"), "id": .number(Double(id)), "method": .string(method), "params": .object(params)])
        let text = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        Task { [self] in
            try? await Task.sleep(for: .seconds(5))
            state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: Failure(description: "\(method) on \(url): no answer within 5 s"))
        }
        return try await withCheckedThrowingContinuation { c in
            state.withLock { $0.pending[id] = c }
            Task { [self] in
                do { try await writer.write(.text(text)) } catch {
                    state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: error)
                }
            }
        }
    }

    func close() {
        guard let writer = state.withLock({ $0.writer }) else { return }
        Task { try? await writer.close(.normalClosure, reason: "cascade closed") }
    }
}
