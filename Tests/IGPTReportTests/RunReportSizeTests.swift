import Foundation
import Testing

@testable import IGPTReport

/// A long run's report stays small: every series is downsampled, so 5,000 steps of metrics
/// and cluster events make a page of a few hundred kB, not tens of MB.
struct RunReportSizeTests {
  static func write(_ lines: [[String: Any]], to path: String) throws {
    let text = try lines.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
    try (text.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
  }

  @Test func validationSamplesAreThinnedEvenlyKeepingBothEnds() {
    #expect(RunReport.thinned(5, to: 12) == [0, 1, 2, 3, 4])
    let t = RunReport.thinned(50, to: 12)
    #expect(t.count == 12 && t.first == 0 && t.last == 49 && zip(t, t.dropFirst()).allSatisfy { $1 - $0 >= 4 && $1 - $0 <= 5 }, "\(t)")
  }

  @Test func aFiveThousandStepRunsReportStaysUnderTwoMegabytes() throws {
    let dir = NSTemporaryDirectory() + "igpt-report-size-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var metrics: [[String: Any]] = []
    var events: [[String: Any]] = [["event": "join", "worker": "w1", "workers": 1, "time": 1000.0]]
    for s in 1...5000 {
      let loss = 2 / (1 + Double(s) / 500) + 0.05 * sin(Double(s))
      metrics.append(["step": s, "loss": loss, "bits_per_token": loss / log(2), "lr": 0.002, "grad_norm": 0.5, "tokens_per_s": 3800.0 + Double(s % 7), "elapsed_s": Double(s) * 1.6])
      if s % 100 == 0 { metrics.append(["step": s, "val_loss": loss + 0.05, "val_bits_per_token": (loss + 0.05) / log(2)]) }
      events.append(["event": "step", "step": s, "time": 1000 + Double(s) * 1.6, "step_s": 1.6, "compute_s": 1.4, "transfer_s": 0.1, "wait_s": 0.1,
                     "wire_bytes_in": 3_000_000, "wire_bytes_out": 3_000_000, "workers": 2, "gradients_in": 2])
    }
    try Self.write(metrics, to: dir + "/metrics.jsonl")
    try Self.write(events, to: dir + "/events.jsonl")
    let jobs: [[String: Any]] = (1...10).map { j in
      ["id": j, "state": "done", "step": j * 500, "origin": "schedule", "submittedAtStep": j * 500, "bestLayer": "4",
       "request": ["layers": "all", "trainImages": 5000, "evalImages": 2000],
       "results": (0...8).map { ["features": "\($0)", "width": 256, "l2": 1e-4, "trainAccuracy": 0.9, "valAccuracy": 0.8, "testAccuracy": 0.79, "iterations": 300, "seconds": 6.0, "grid": [:]] as [String: Any] }
         + [["features": "pixels", "width": 196, "l2": 0.003, "trainAccuracy": 0.87, "valAccuracy": 0.84, "testAccuracy": 0.83, "iterations": 300, "seconds": 5.0, "grid": [:]]]]
    }
    try Self.write(jobs, to: dir + "/probes.jsonl")
    // a `probe run --out` file on other images: its own series in Figure 3, not joined to the jobs'
    let wide: [String: Any] = ["checkpoint": "runs/x/checkpoints/step-00005000", "bestLayer": "4", "trainImages": 20000,
                               "results": [["features": "4", "width": 256, "l2": 1e-4, "trainAccuracy": 0.9, "valAccuracy": 0.83, "testAccuracy": 0.827]]]
    try JSONSerialization.data(withJSONObject: wide).write(to: URL(fileURLWithPath: dir + "/probe-20k.json"))
    let html = RunReport(runDir: dir).html()
    let figure3 = try #require(html.range(of: "aria-label=\"Best-layer accuracy against validation loss\"").map { html[$0.lowerBound...] })
    let series = String(figure3).components(separatedBy: "</svg>")[0]
    #expect(series.contains("data-series=\"5000 train images\"") && series.contains("data-series=\"20000 train images\""), "\(series.prefix(600))")
    #expect(html.contains("Linear probe accuracy per layer (step 5000, 20000 train images)"))
    #expect(html.utf8.count < 2_000_000, "\(html.utf8.count) bytes")
    // no series drew more than the cap
    var rest = html[...]
    var longest = 0
    while let r = rest.range(of: "data-values=\"") {
      let end = rest[r.upperBound...].firstIndex(of: "\"")!
      longest = max(longest, rest[r.upperBound..<end].split(separator: " ").count)
      rest = rest[end...]
    }
    #expect(longest > 100 && longest <= 400, "\(longest)")
    #expect(html.contains("Step time split") && html.contains("Best-layer accuracy against validation loss"))
  }
}
