import Foundation
import Logging
import RingSFU

/// A room homed on another node, as this node mirrors it for its own
/// players: a local router whose producers come over one UDP pipe (SRTP,
/// RTX) from the home node's room router. This node sets up both ends,
/// the far one through the home node's JSON-RPC API as a member of the room
/// (`room.join`), so the home node keeps the room open while the mirror
/// lives and closes its end when the connection ends. Producers the home
/// node closes close here (its pipe consumers report `producerclose`); a
/// lost connection (the home node died or left) ends the mirror.
@RingSFUActor
final class Uplink {
    let room: String
    let home: NodeRecord
    let router: Router
    private var link: RpcLink?
    private var remotePipe = ""
    private var pipe: PipeTransport?
    /// Remote publishers (their transport ids on the home node), in the
    /// home node's order, with their producers here.
    private(set) var publishers: [(id: String, producers: [Producer])] = []
    /// The home node's pipe consumer ids and what they feed here.
    private var fed: [String: (publisher: String, producer: Producer)] = [:]
    /// Producers of this node's members piped up to the home.
    private var pipedUp = Set<String>()
    private(set) var ended = false
    private let logger = Logger(label: "ringsfu.cluster")
    /// A remote publisher has no producer left.
    var onPublisherGone: (String) -> Void = { _ in }
    /// The mirror ended (with the reason), by `close()` or a lost link.
    var onEnd: (String) -> Void = { _ in }

    init(room: String, home: NodeRecord, router: Router) {
        self.room = room
        self.home = home
        self.router = router
    }

    /// Connects to the home node and pipes the room's producers here.
    func start(pipeIp: String, token: String?) async throws {
        let base = home.url.hasPrefix("https://") ? "wss://" + home.url.dropFirst(8) : "ws://" + home.url.replacingOccurrences(of: "http://", with: "")
        let link = RpcLink(url: base + "/rpc", token: token, onNotification: { [weak self] method, params in
            Task { @RingSFUActor in self?.notified(method, params) }
        }, onEnd: { [weak self] reason in
            Task { @RingSFUActor in self?.end("the room's home node \(self?.home.id ?? "") left (\(reason))") }
        })
        self.link = link
        try await link.start()
        let joined = try await link.call("room.join", ["room": .string(room)])
        guard let routerId = joined["routerId"]?.stringValue else { throw RpcLink.Failure(description: "room.join gave no routerId") }
        let local = try router.createPipeTransport(PipeTransportOptions(listenInfo: TransportListenInfo(protocol: "udp", ip: pipeIp), enableRtx: true, enableSrtp: true,
                                                                         appData: ["room": .string(room), "uplink": .string(home.id)]))
        pipe = local
        let remote = try await link.call("router.createPipeTransport", [
            "routerId": .string(routerId), "listenInfo": .object(["protocol": .string("udp"), "ip": .string(home.pipeIp)]),
            "enableSrtp": .bool(true), "enableRtx": .bool(true),
        ])
        guard let rid = remote["id"]?.stringValue, let tuple = remote["tuple"], let ip = tuple["localAddress"]?.stringValue,
              let port = tuple["localPort"]?.numberValue, let srtp = remote["srtpParameters"] else {
            throw RpcLink.Failure(description: "router.createPipeTransport gave no tuple or SRTP parameters")
        }
        remotePipe = rid
        _ = try await link.call("transport.connect", ["transportId": .string(rid), "ip": .string(pipeIp), "port": .number(Double(local.tuple?.localPort ?? 0)),
                                                      "srtpParameters": .encoding(local.srtpParameters)])
        try local.connect(ip: ip, port: Int(port), srtpParameters: try srtp.decode(SrtpParameters.self, field: "srtpParameters"))
        try await pipeNew(joined["publishers"])
        logger.debug("cascade up", metadata: ["room": "\(room)", "home": "\(home.id)", "publishers": "\(publishers.count)"])
    }

    /// Pipes producers the home node has and this node does not yet (a
    /// player asked for a publisher the mirror does not know).
    func refresh() async throws {
        guard let link, !ended else { return }
        try await pipeNew(try await link.call("room.getPublishers", ["room": .string(room)])["publishers"])
    }

    private func pipeNew(_ list: JSONValue?) async throws {
        guard let link, let pipe, case .array(let remotes)? = list else { return }
        for remote in remotes.prefix(25) {
            guard let pid = remote["id"]?.stringValue, case .array(let producers)? = remote["producers"] else { continue }
            var mine = publishers.first { $0.id == pid }?.producers ?? []
            for p in producers {
                // Not back what this node sent up.
                guard let id = p["id"]?.stringValue, router.producer(id: id) == nil, !pipedUp.contains(id) else { continue }
                let c = try await link.call("transport.consume", ["transportId": .string(remotePipe), "producerId": .string(id),
                                                                  "rtpCapabilities": .encoding(RtpCapabilities())])
                guard let cid = c["id"]?.stringValue, let kind = c["kind"]?.stringValue.flatMap(MediaKind.init(rawValue:)), let params = c["rtpParameters"] else { continue }
                let rtp = try params.decode(RtpParameters.self, field: "rtpParameters")
                let producer = try pipe.produce(ProducerOptions(id: id, kind: kind, rtpParameters: rtp, paused: c["producerPaused"]?.boolValue ?? false))
                fed[cid] = (pid, producer)
                mine.append(producer)
            }
            if let i = publishers.firstIndex(where: { $0.id == pid }) { publishers[i].producers = mine } else if !mine.isEmpty { publishers.append((pid, mine)) }
        }
    }

    /// Sends a producer of this node's mirror router up to the home, where
    /// it is produced on the home's end of the pipe under the same id and
    /// listed as `publisher`'s; its pause, resume and close follow it.
    func pipeUp(_ producer: Producer, publisher: String) async throws {
        guard let link, let pipe, !ended else { throw RpcLink.Failure(description: "the link to the home node is closed") }
        let consumer = try pipe.consume(ConsumerOptions(producerId: producer.id, rtpCapabilities: RtpCapabilities()))
        let events = producer.observer
        pipedUp.insert(producer.id)
        do {
            _ = try await link.call("transport.produce", [
                "transportId": .string(remotePipe), "id": .string(producer.id), "kind": .string(producer.kind.rawValue),
                "rtpParameters": .encoding(consumer.rtpParameters), "paused": .bool(producer.paused),
                "appData": .object(["publisher": .string(publisher)]),
            ])
        } catch {
            pipedUp.remove(producer.id)
            consumer.close()
            throw error
        }
        let id = producer.id
        Task { @RingSFUActor [weak self] in
            for await event in events {
                guard let self, let link = self.link else { return }
                switch event {
                case .close:
                    self.pipedUp.remove(id)
                    _ = try? await link.call("producer.close", ["producerId": .string(id)])
                    return
                case .pause: _ = try? await link.call("producer.pause", ["producerId": .string(id)])
                case .resume: _ = try? await link.call("producer.resume", ["producerId": .string(id)])
                }
            }
        }
    }

    private func notified(_ method: String, _ params: JSONValue) {
        guard method == "consumer.producerclose" || method == "consumer.transportclose", let cid = params["consumerId"]?.stringValue,
              let (publisher, producer) = fed.removeValue(forKey: cid) else { return }
        producer.close()
        guard let i = publishers.firstIndex(where: { $0.id == publisher }) else { return }
        publishers[i].producers.removeAll { $0 === producer }
        if publishers[i].producers.isEmpty {
            publishers.remove(at: i)
            onPublisherGone(publisher)
        }
    }

    /// Ends the mirror: the link closes (the home node closes its end),
    /// the local router goes with its producers.
    func close() { end("no player left") }

    private func end(_ reason: String) {
        guard !ended else { return }
        ended = true
        logger.debug("cascade down", metadata: ["room": "\(room)", "home": "\(home.id)", "reason": "\(reason)"])
        link?.close()
        link = nil
        onEnd(reason)
        router.close()
    }
}
