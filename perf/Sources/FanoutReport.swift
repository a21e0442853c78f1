import Foundation

/// How a fan-out run reports: the table, progress, the settings a
/// result file records, and the charts.
extension Fanout {
    /// The settings a result file records.
    struct Settings: Codable {
        var consumers: String, duration: Double, outputPps: Double, traffic: String, repeatCount: Int
        var baseline: Bool, gso: Bool, srtp: String?, loss: Double, transportCc: Bool, consumerCc: Bool, pipeHop: Bool
        var coalesceUs: Int?, target: String?, sfuCpu: Int, loadCpu: Int
    }

    var settingsRecord: Settings {
        Settings(consumers: consumers, duration: duration, outputPps: outputPps, traffic: traffic, repeatCount: repeatCount, baseline: baseline, gso: !noGso,
                 srtp: srtp, loss: loss, transportCc: transportCc, consumerCc: consumerCc, pipeHop: pipeHop, coalesceUs: coalesceUs, target: target,
                 sfuCpu: sfuCpu, loadCpu: loadCpu)
    }

    /// Progress on stderr (stdout keeps the table).
    func progress(_ line: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    func writeCharts(_ results: [RunResult], prefix: String) throws {
        let n = results.map { Double($0.consumers) }
        var cpu = [SvgChart.Series(name: "RingSFU", points: Array(zip(n, results.map(\.cpuSecondsPerMillion))).map { (x: $0.0, y: $0.1) })]
        if results.allSatisfy({ $0.baseline != nil }) {
            cpu.append(SvgChart.Series(name: "recvmmsg/sendmmsg baseline", points: Array(zip(n, results.map { $0.baseline!.cpuSecondsPerMillion })).map { (x: $0.0, y: $0.1) }))
        }
        let caption = "\(Int(outputPps)) packets/s out, \(traffic)\(srtp.map { ", SRTP " + $0 } ?? "")"
        try SvgChart(title: "CPU per forwarded packet (\(caption))", xLabel: "consumers per packet", yLabel: "CPU-seconds per million packets", series: cpu)
            .render().write(toFile: prefix + "-cpu.svg", atomically: true, encoding: .utf8)
        let latency = [
            SvgChart.Series(name: "p50", points: Array(zip(n, results.map(\.latencyUs.p50))).map { (x: $0.0, y: $0.1) }),
            SvgChart.Series(name: "p99", points: Array(zip(n, results.map(\.latencyUs.p99))).map { (x: $0.0, y: $0.1) }),
        ]
        try SvgChart(title: "Forwarding latency (\(caption))", xLabel: "consumers per packet", yLabel: "microseconds", series: latency)
            .render().write(toFile: prefix + "-latency.svg", atomically: true, encoding: .utf8)
        progress("charts: \(prefix)-cpu.svg, \(prefix)-latency.svg")
    }

    func printTable(_ results: [RunResult]) {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        print("traffic=\(traffic) srtp=\(srtpSuite?.rawValue ?? "off") consumer-cc=\(consumerCc) pipe-hop=\(pipeHop ? (udpPipe ? "udp-srtp" : "ring") : "off") coalesce-us=\(coalesceUs.map(String.init) ?? "default") loss=\(loss)% duration=\(duration)s runs=\(max(1, repeatCount)) output-target=\(Int(outputPps)) pps gso=\(!noGso) sfu-cpu=\(sfuCpu) load-cpu=\(loadCpu)")
        var header = "| N | offered pps | forwarded pps | loss | CPU-s / M pkts | p50 us | p99 us | p99.9 us | sends/pkt |"
        var rule = "|---|---|---|---|---|---|---|---|---|"
        if loss > 0 {
            header += " retransmitted pps |"
            rule += "---|"
        }
        if consumerCc {
            header += " probe pps |"
            rule += "---|"
        }
        if baseline {
            header += " baseline CPU-s / M | baseline loss | baseline p99 us | SFU / baseline CPU |"
            rule += "---|---|---|---|"
        }
        print(header)
        print(rule)
        for r in results {
            var line = "| \(r.consumers) | \(f(r.offeredPps, 0)) | \(f(r.forwardedPps, 0)) | \(f(r.loss * 100, 3))% | \(f(r.cpuSecondsPerMillion)) | \(f(r.latencyUs.p50, 0)) | \(f(r.latencyUs.p99, 0)) | \(f(r.latencyUs.p999, 0)) | \(r.sendCallsPerPacket.map { f($0, 3) } ?? "-") |"
            if loss > 0 { line += " \(f(r.retransmittedPps ?? 0, 0)) |" }
            if consumerCc { line += " \(f(r.probePps ?? 0, 0)) |" }
            if let b = r.baseline {
                line += " \(f(b.cpuSecondsPerMillion)) | \(f(b.loss * 100, 3))% | \(f(b.latencyUs.p99, 0)) | \(f(r.cpuSecondsPerMillion / b.cpuSecondsPerMillion, 3)) |"
            }
            print(line)
        }
    }
}
