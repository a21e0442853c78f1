import Foundation
import RingSFU

/// What a run's JSON carries besides its figures, so that a result file
/// says where and how it was made.
struct RunMetadata: Codable {
    var tool = "ringsfu-perf"
    var version = RingSFUVersion.current
    var command: [String] = CommandLine.arguments
    var host: String = ProcessInfo.processInfo.hostName
    var cpuModel: String = RunMetadata.cpuModel()
    var cores: Int = ProcessInfo.processInfo.activeProcessorCount
    var kernel: String = RunMetadata.kernel()
    var started: Date
    var finished: Date?

    init(started: Date = Date()) { self.started = started }

    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    static func kernel() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "unknown").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A line chart as standalone SVG: one or more series over a numeric x
/// axis, with axes, ticks, a legend. Enough for result files people open
/// in a browser; no dependency.
struct SvgChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]

    func render(width: Double = 640, height: Double = 400) -> String {
        let left = 70.0, right = 20.0, top = 40.0, bottom = 60.0
        let all = series.flatMap(\.points).filter { $0.y.isFinite }
        let xMin = all.map(\.x).min() ?? 0, xMax = max(all.map(\.x).max() ?? 1, xMin + 1)
        let yMax = Self.niceCeiling((all.map(\.y).max() ?? 1) * 1.1)
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - y / yMax * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(Self.escape(title))</text>\n"
        // Axes and ticks: five on y, the data's x values on x.
        out += "<line x1=\"\(f(left))\" y1=\"\(f(py(0)))\" x2=\"\(f(width - right))\" y2=\"\(f(py(0)))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(py(0)))\" stroke=\"black\"/>\n"
        for i in 0...5 {
            let y = yMax * Double(i) / 5
            out += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(width - right))\" y2=\"\(f(py(y)))\" stroke=\"#ddd\"/>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(Self.label(y))</text>\n"
        }
        for x in Set(all.map(\.x)).sorted() {
            out += "<text x=\"\(f(px(x)))\" y=\"\(f(py(0) + 18))\" text-anchor=\"middle\">\(Self.label(x))</text>\n"
        }
        out += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 18))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        out += "<text transform=\"translate(16 \(f((top + height - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let points = s.points.filter { $0.y.isFinite }.sorted { $0.x < $1.x }
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " "))\"/>\n"
            for p in points { out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(color)\"/>\n" }
            out += "<rect x=\"\(f(left + 10))\" y=\"\(f(top + 4 + Double(i) * 16))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>\n"
            out += "<text x=\"\(f(left + 26))\" y=\"\(f(top + 13 + Double(i) * 16))\">\(Self.escape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let magnitude = pow(10, floor(log10(v)))
        for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * magnitude >= v { return step * magnitude }
        return 10 * magnitude
    }

    static func label(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(format: "%.2f", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
