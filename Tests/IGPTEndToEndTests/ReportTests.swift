import Foundation
import IGPTTestSupport
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// `igpt report` on real runs: each chart carries the numbers of the files it names, images are
/// embedded, and a run with parts missing gives a report that lists them.
@Suite(.serialized) struct ReportTests {
  /// The page's charts: title -> series name -> (x, y) values, plus references and marks.
  struct Chart {
    var series: [String: [[Double]]] = [:]
    var references: [Double] = []
    var marks: [[Double]] = []
  }

  final class ChartReader: NSObject, XMLParserDelegate {
    var chart = Chart()
    func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes a: [String: String]) {
      switch a["class"] {
      case "series": chart.series[a["data-series"] ?? ""] = (a["data-values"] ?? "").split(separator: " ").map { $0.split(separator: ",").compactMap { Double($0) } }
      case "reference": chart.references.append(Double(a["data-y"] ?? "") ?? .nan)
      case "mark": chart.marks.append([Double(a["data-x"] ?? "") ?? .nan, Double(a["data-y"] ?? "") ?? .nan])
      default: break
      }
    }
  }

  /// Every inline SVG of the page by its aria-label (the chart's title), parsed as XML.
  static func charts(_ html: String) -> [String: Chart] {
    var out: [String: Chart] = [:]
    var rest = html[...]
    while let start = rest.range(of: "<svg "), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
      let svg = String(rest[start.lowerBound..<end.upperBound])
      let reader = ChartReader()
      let parser = XMLParser(data: Data(svg.utf8))
      parser.delegate = reader
      #expect(parser.parse(), "not well-formed: \(svg.prefix(200))")
      let title = svg.range(of: "aria-label=\"[^\"]*\"", options: .regularExpression).map { String(svg[$0].dropFirst(12).dropLast()) } ?? ""
      out[title] = reader.chart
      rest = rest[end.upperBound...]
    }
    return out
  }

  static func records(_ path: String) -> [[String: Any]] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
      .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
  }

  @Test func aSmallRunsReportDrawsItsOwnNumbers() throws {
    let (_, config) = try TrainCommandTests.setUp(extra: "probes: {every: 8, layers: all, train_images: 1000, eval_images: 1000, raw_pixels: true}")
    let dir = Fixtures.directory("e2ereport") + "/run"
    let t = try IGPTBinary.run(["train", "--config", config, "--run", dir])
    #expect(t.status == 0, "\(t.stderr)")
    let s = try IGPTBinary.run(["sample", "--checkpoint", dir, "--count", "4", "--seed", "1", "--out", dir + "/samples.png"])
    #expect(s.status == 0, "\(s.stderr)")
    let r = try IGPTBinary.run(["report", dir])
    #expect(r.status == 0 && r.stdout.contains("report.html"), "\(r.stderr)")
    let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
    let charts = Self.charts(html)
    // training: the loss chart holds exactly metrics.jsonl's (step, loss) and (step, val_loss)
    let metrics = Self.records(dir + "/metrics.jsonl")
    let loss = metrics.compactMap { m in (m["loss"] as? Double).map { [Double(m["step"] as! Int), $0] } }
    let val = metrics.compactMap { m in (m["val_loss"] as? Double).map { [Double(m["step"] as! Int), $0] } }
    let lossChart = try #require(charts["Loss (nats per token)"], "\(charts.keys.sorted())")
    #expect(lossChart.series["train"] == loss && loss.count == 8)
    #expect(lossChart.series["validation"] == val && val.count == 2)
    #expect(charts["Learning rate"]?.series["lr"]?.count == 8)
    // tokens seen: 8 images of 16 tokens a step
    #expect(charts["Loss against tokens seen"]?.series["train"]?.map { $0[0] } == loss.map { $0[0] * 128 })
    // probes: accuracy per layer, the pixel floor, the best layer marked
    let job = try #require(Self.records(dir + "/probes.jsonl").first)
    let results = job["results"] as? [[String: Any]] ?? []
    let layers = results.filter { Int($0["features"] as? String ?? "") != nil }
    let probe = try #require(charts["Linear probe accuracy per layer (step 8, 1000 train images)"], "\(charts.keys.sorted())")
    #expect(probe.series["test"] == layers.map { [Double($0["features"] as! String)!, $0["testAccuracy"] as! Double] })
    #expect(probe.references == [results.first { $0["features"] as? String == "pixels" }!["testAccuracy"] as! Double])
    let best = try #require(job["bestLayer"] as? String)
    #expect(probe.marks == [[Double(best)!, layers.first { $0["features"] as? String == best }!["testAccuracy"] as! Double]])
    // the sample grid, embedded as it is on disk
    let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/samples.png"))
    #expect(html.contains("data:image/png;base64,\(png.base64EncodedString())"))
    // and the grid drawn at each validation, one PNG per validation step, each embedded
    let validated = val.map { Int($0[0]) }
    for step in validated {
      let grid = try Data(contentsOf: URL(fileURLWithPath: dir + String(format: "/samples/step-%08d.png", step)))
      #expect(html.contains("data:image/png;base64,\(grid.base64EncodedString())\"><figcaption>step \(step)<"), "step \(step)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/samples").count == validated.count)
    // what a single-host run lacks is said; where numbers came from too
    #expect(html.contains("no events.jsonl") && html.contains("from metrics.jsonl lines 1-"))
    // self-contained: nothing to fetch (the SVG namespace is a name, not a request)
    #expect(!html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http"))
  }

  /// --watch rewrites the report when a checkpoint appears, and stops on SIGTERM.
  @Test func watchRewritesAtEachNewCheckpoint() throws {
    let dir = Fixtures.directory("e2ereport-watch")
    try "{\"step\":1,\"loss\":2.5}\n".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
    let p = Process()
    p.executableURL = IGPTBinary.url
    p.arguments = ["report", "--watch", dir]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    func report() -> String { (try? String(contentsOfFile: dir + "/report.html", encoding: .utf8)) ?? "" }
    func waitFor(_ ok: () -> Bool) -> Bool {
      let deadline = Date().addingTimeInterval(20)
      while Date() < deadline { if ok() { return true }; usleep(50_000) }
      return false
    }
    #expect(waitFor { report().contains("2.5") })
    try "{\"step\":1,\"loss\":2.5}\n{\"step\":2,\"loss\":1.75}\n".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
    try FileManager.default.createDirectory(atPath: dir + "/checkpoints/step-00000002", withIntermediateDirectories: true)
    #expect(waitFor { report().contains("1.75") }, "not rewritten after a new checkpoint")
    kill(p.processIdentifier, SIGTERM)
    p.waitUntilExit()
    #expect(p.terminationReason == .exit && p.terminationStatus == 0)
  }

  @Test func aRunWithPartsMissingSaysWhatIsMissing() throws {
    let dir = Fixtures.directory("e2ereport-empty")
    let empty = try IGPTBinary.run(["report", dir, "--out", dir + "/r.html"])
    #expect(empty.status == 0, "\(empty.stderr)")
    let html = try String(contentsOfFile: dir + "/r.html", encoding: .utf8)
    for part in ["training: no metrics.jsonl records", "probes: no probe results", "samples: no PNG images", "cluster: no events.jsonl"] {
      #expect(html.contains(part) && empty.stderr.contains(part), "\(part)")
    }
    // metrics only (a torn last line too): the training charts, the rest listed as missing
    try "{\"step\":1,\"loss\":2.5,\"lr\":0.001}\n{\"step\":2,\"loss\":2.0,\"lr\":0.002}\n{\"step\":3,\"lo".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
    #expect(try IGPTBinary.run(["report", dir, "--out", dir + "/r.html"]).status == 0)
    let charts = Self.charts(try String(contentsOfFile: dir + "/r.html", encoding: .utf8))
    #expect(charts["Loss (nats per token)"]?.series["train"] == [[1, 2.5], [2, 2.0]])
    let unwritable = try IGPTBinary.run(["report", dir, "--out", dir + "/no/such/dir/r.html"])
    #expect(unwritable.status != 0 && unwritable.stderr.contains("cannot be written")
      && unwritable.stderr.split(separator: "\n").filter { !$0.hasPrefix("report: not in the run") }.count == 1, "\(unwritable.stderr)")
    let bad = try IGPTBinary.run(["report", dir + "/nope"])
    #expect(bad.status != 0 && bad.stderr.contains("not a run directory") && bad.stderr.split(separator: "\n").count <= 3)
  }
}
