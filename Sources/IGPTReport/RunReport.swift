import Foundation

/// `igpt report`: one self-contained HTML page for a run directory, the paper's pictures drawn
/// for it: training curves, probe accuracy per layer against the raw-pixel floor (Figure 2),
/// best-layer accuracy against validation loss (Figure 3), sample grids, the cluster's
/// timeline, and the run's config and numerics. Every chart says which file and lines its
/// numbers came from; a part the run lacks says so instead of failing.
public struct RunReport {
  public let runDir: String
  /// Printed in the page's footer (the binary's version).
  public var version = ""
  let files: RunFiles

  public init(runDir: String) {
    self.runDir = runDir
    files = RunFiles(runDir: runDir)
  }

  /// The parts the run has no data for, one line each (also in the page).
  public var missing: [String] {
    var out: [String] = []
    if files.metrics.isEmpty { out.append("training: no metrics.jsonl records") }
    if files.probes.isEmpty { out.append("probes: no probe results (probes.every in the config, `igpt probe submit`, or `igpt probe run --out RUN/probe.json`)") }
    if files.images.isEmpty && files.stepSamples.isEmpty {
      out.append("samples: no PNG images in the run directory (`igpt sample --out RUN/samples.png`) or RUN/samples (drawn at each validation)")
    }
    if files.events.isEmpty { out.append("cluster: no events.jsonl (a single-host run)") }
    return out + files.problems
  }

  public func html(generated: Date = Date()) -> String {
    let name = (runDir as NSString).lastPathComponent
    var body = "<h1>igpt run \(SVGChart.escape(name))</h1>"
    body += "<p class=\"meta\">\(SVGChart.escape(runDir)) · generated \(ISO8601DateFormatter().string(from: generated))</p>"
    if !missing.isEmpty {
      body += "<div class=\"missing\"><b>Not in this run:</b><ul>" + missing.map { "<li>\(SVGChart.escape($0))</li>" }.joined() + "</ul></div>"
    }
    body += section("Training", training()) + section("Representation quality", probes()) + section("Samples", samples())
    body += section("Cluster", cluster()) + section("Run", about())
    return Self.page(title: "igpt report: \(name)", body: body)
  }

  func section(_ title: String, _ content: String) -> String {
    "<section><h2>\(title)</h2>\(content.isEmpty ? "<p class=\"none\">nothing recorded</p>" : content)</section>"
  }

  func figure(_ chart: SVGChart, source: String) -> String {
    "<figure>\(chart.svg())<figcaption>from \(SVGChart.escape(source))</figcaption></figure>"
  }

  // MARK: - Training

  func training() -> String {
    let m = files.metrics
    guard !m.isEmpty else { return "" }
    let loss = files.series(m, "loss"), val = files.series(m, "val_loss")
    var out = figure(SVGChart(title: "Loss (nats per token)", xLabel: "step", yLabel: "nats",
                              series: [.init("train", loss.points), .init("validation", val.points, dots: true)]),
                     source: "metrics.jsonl \(loss.lines); validation \(val.lines)")
    let bits = files.series(m, "bits_per_token"), vbits = files.series(m, "val_bits_per_token")
    out += figure(SVGChart(title: "Loss (bits per token)", xLabel: "step", yLabel: "bits",
                           series: [.init("train", bits.points), .init("validation", vbits.points, dots: true)]),
                  source: "metrics.jsonl \(bits.lines)")
    if let perStep = tokensPerStep {
      let t = Double(perStep)
      out += figure(SVGChart(title: "Loss against tokens seen", xLabel: "tokens", yLabel: "nats",
                             series: [.init("train", loss.points.map { ($0.x * t, $0.y) }), .init("validation", val.points.map { ($0.x * t, $0.y) }, dots: true)]),
                    source: "metrics.jsonl \(loss.lines), \(perStep) tokens per step (\(files.statePath ?? "state.json"))")
    }
    let lr = files.series(m, "lr"), rate = files.series(m, "tokens_per_s")
    out += figure(SVGChart(title: "Learning rate", xLabel: "step", yLabel: "lr", series: [.init("lr", lr.points)]), source: "metrics.jsonl \(lr.lines)")
    out += figure(SVGChart(title: "Throughput", xLabel: "step", yLabel: "tokens/s", series: [.init("tokens/s", rate.points)]),
                  source: "metrics.jsonl \(rate.lines)")
    return out
  }

  /// Images per step times tokens per image, from the newest checkpoint's state.
  var tokensPerStep: Int? {
    guard let s = files.state, let batch = ((s["config"] as? [String: Any])?["train"] as? [String: Any])?["batch"] as? Int,
          let seq = (s["model"] as? [String: Any])?["seq"] as? Int else { return nil }
    return batch * seq
  }

  // MARK: - Probes

  func probes() -> String {
    guard !files.probes.isEmpty else { return "" }
    var out = ""
    for p in files.probes.suffix(8) { out += layerChart(p) }
    out += qualityAgainstLoss()
    out += probeTable()
    return out
  }

  /// Accuracy per layer (Figure 2): val and test, the raw-pixel floor, the best layer marked.
  func layerChart(_ p: RunFiles.ProbeResult) -> String {
    let layers = p.results.compactMap { r -> (Double, Double, Double)? in
      guard let f = r["features"] as? String, let l = Int(f), let v = r["valAccuracy"] as? Double, let t = r["testAccuracy"] as? Double else { return nil }
      return (Double(l), v, t)
    }
    guard !layers.isEmpty else { return "" }
    var chart = SVGChart(title: "Linear probe accuracy per layer\(p.step.map { " (step \($0), \(p.protocolName))" } ?? " (\(p.protocolName))")", xLabel: "layer", yLabel: "accuracy",
                         series: [.init("test", layers.map { ($0.0, $0.2) }, dots: true), .init("val", layers.map { ($0.0, $0.1) }, dots: true)])
    if let px = p.results.first(where: { $0["features"] as? String == "pixels" }), let t = px["testAccuracy"] as? Double {
      chart.references.append(.init(String(format: "raw pixels %.1f%%", t * 100), y: t))
    }
    if let best = p.bestLayer, let l = Int(best), let row = layers.first(where: { Int($0.0) == l }) {
      chart.marks.append(.init(String(format: "best layer %d: %.1f%%", l, row.2 * 100), x: row.0, y: row.2))
    }
    return figure(chart, source: p.source)
  }

  /// Best-layer test accuracy against the validation loss at its step (Figure 3).
  func qualityAgainstLoss() -> String {
    let val = files.series(files.metrics, "val_loss").points
    // one series per protocol: accuracies of probes fitted on different images do not compare
    var byProtocol: [(name: String, points: [(x: Double, y: Double)])] = []
    for p in files.probes {
      guard let step = p.step, let best = p.bestLayer,
            let acc = p.results.first(where: { $0["features"] as? String == best })?["testAccuracy"] as? Double,
            let loss = val.last(where: { $0.x <= Double(step) })?.y else { continue }
      if let i = byProtocol.firstIndex(where: { $0.name == p.protocolName }) { byProtocol[i].points.append((loss, acc)) }
      else { byProtocol.append((p.protocolName, [(loss, acc)])) }
    }
    guard byProtocol.reduce(0, { $0 + $1.points.count }) >= 2 else { return "" }
    return figure(SVGChart(title: "Best-layer accuracy against validation loss", xLabel: "validation loss (nats)", yLabel: "test accuracy",
                           series: byProtocol.map { .init($0.name, $0.points.sorted { $0.x < $1.x }, dots: true) }),
                  source: "probe results and metrics.jsonl val_loss at or before each probe's step")
  }

  /// Every result as a row: layers, concatenations, pixels; low-data probes say their labels.
  func probeTable() -> String {
    var rows = ""
    for p in files.probes {
      for r in p.results {
        let f = r["features"] as? String ?? "?"
        let pct = { (k: String) in (r[k] as? Double).map { String(format: "%.2f", $0 * 100) } ?? "" }
        let kind = Int(f) != nil ? "layer" : f == "pixels" ? "raw pixels" : "concatenated"
        rows += "<tr><td>\(SVGChart.escape(p.source))</td><td>\(p.step.map(String.init) ?? "")</td><td>\(p.labelsPerClass.map { "\($0) per class" } ?? "all")</td>"
        rows += "<td>\(SVGChart.escape(f))\(f == p.bestLayer ? " (best)" : "")</td><td>\(kind)</td><td>\(r["width"] as? Int ?? 0)</td>"
        rows += "<td>\(r["l2"].map { "\($0)" } ?? "")</td><td>\(pct("valAccuracy"))</td><td>\(pct("testAccuracy"))</td></tr>"
      }
    }
    return "<table><tr><th>source</th><th>step</th><th>labels</th><th>features</th><th>kind</th><th>width</th><th>L2</th><th>val %</th><th>test %</th></tr>\(rows)</table>"
  }

  // MARK: - Samples

  /// Validation sample grids shown at most: a long run's are thinned evenly, the last kept.
  static let maxStepSamples = 12

  func samples() -> String {
    var out = files.images.map { img in
      "<figure><img alt=\"\(SVGChart.escape(img.name))\" src=\"data:image/png;base64,\(img.png.base64EncodedString())\"><figcaption>\(SVGChart.escape(img.name))</figcaption></figure>"
    }.joined()
    let all = files.stepSamples
    if !all.isEmpty {
      let shown = Self.thinned(all.count, to: Self.maxStepSamples).map { all[$0] }
      out += "<h3>At each validation</h3><div class=\"strip\">" + shown.map { s in
        "<figure><img alt=\"samples at step \(s.step)\" src=\"data:image/png;base64,\(s.png.base64EncodedString())\"><figcaption>step \(s.step)</figcaption></figure>"
      }.joined() + "</div><p class=\"meta\">\(shown.count) of \(all.count) grids in samples/ (8 samples each, temperature 1)</p>"
    }
    return out
  }

  /// At most `limit` indices of 0..<count, evenly spaced, the first and last included.
  static func thinned(_ count: Int, to limit: Int) -> [Int] {
    guard count > limit, limit > 1 else { return Array(0..<min(count, max(limit, 1))) }
    return (0..<limit).map { Int((Double($0) * Double(count - 1) / Double(limit - 1)).rounded()) }
  }

  // MARK: - Cluster

  func cluster() -> String {
    let e = files.events
    guard !e.isEmpty else { return "" }
    let start = e.compactMap { $0.double("time") }.min() ?? 0
    let membership = e.filter { ["join", "leave", "dead"].contains($0.object["event"] as? String ?? "") && $0.double("workers") != nil }
    var out = ""
    if !membership.isEmpty {
      // a step line: each count holds until the next join or loss, the last one to the run's last event
      var points: [(x: Double, y: Double)] = []
      for r in membership {
        let t = r.double("time")! - start
        if let last = points.last { points.append((t, last.y)) }
        points.append((t, r.double("workers")!))
      }
      let end = (e.compactMap { $0.double("time") }.max() ?? start) - start
      if let last = points.last, end > last.x { points.append((end, last.y)) }
      out += figure(SVGChart(title: "Workers connected", xLabel: "seconds since the first event", yLabel: "workers",
                             series: [.init("workers", points)]),
                    source: "events.jsonl join/leave/dead lines \(membership.first!.line)-\(membership.last!.line)")
    }
    let steps = e.filter { $0.object["event"] as? String == "step" }
    if !steps.isEmpty {
      let split = ["compute_s", "transfer_s", "wait_s"].map { k in SVGChart.Series(k.replacingOccurrences(of: "_s", with: ""), files.series(steps, k).points) }
      out += figure(SVGChart(title: "Step time split (seconds)", xLabel: "step", yLabel: "seconds", series: split),
                    source: "events.jsonl step lines \(steps.first!.line)-\(steps.last!.line)")
      out += figure(SVGChart(title: "Bytes on the wire per step", xLabel: "step", yLabel: "bytes",
                             series: [.init("in", files.series(steps, "wire_bytes_in").points), .init("out", files.series(steps, "wire_bytes_out").points)]),
                    source: "events.jsonl step lines \(steps.first!.line)-\(steps.last!.line)")
    }
    out += microbatchesPerWorker(e)
    let notable = e.filter { ["join", "leave", "dead", "reissued", "evicted", "refused", "shard_join", "shard_lost"].contains($0.object["event"] as? String ?? "") }
    if !notable.isEmpty {
      out += "<table><tr><th>line</th><th>seconds</th><th>event</th><th>worker</th><th>detail</th></tr>"
      for r in notable.suffix(200) {
        let detail = (r.object["why"] ?? r.object["what"] ?? r.object["address"]).map { "\($0)" } ?? ""
        out += "<tr><td>\(r.line)</td><td>\(String(format: "%.1f", (r.double("time") ?? start) - start))</td><td>\(r.object["event"] as? String ?? "")</td>"
        out += "<td>\(SVGChart.escape(r.object["worker"] as? String ?? ""))</td><td>\(SVGChart.escape(detail))</td></tr>"
      }
      out += "</table>"
    }
    return out
  }

  /// Microbatches each worker computed, from its leave/dead event or the run's end.
  func microbatchesPerWorker(_ e: [RunFiles.Record]) -> String {
    var done: [(String, Int, Int)] = []
    for r in e where ["leave", "dead", "finished"].contains(r.object["event"] as? String ?? "") {
      if let w = r.object["worker"] as? String, let n = r.int("microbatches") { done.append((w, n, r.line)) }
    }
    guard !done.isEmpty else { return "<p class=\"none\">microbatches per worker: not recorded (runs before they were)</p>" }
    return "<table><tr><th>worker</th><th>microbatches</th><th>events.jsonl line</th></tr>"
      + done.map { "<tr><td>\(SVGChart.escape($0.0))</td><td>\($0.1)</td><td>\($0.2)</td></tr>" }.joined() + "</table>"
  }

  // MARK: - The run

  func about() -> String {
    guard let s = files.state else { return "" }
    var out = ""
    if let n = s["numerics"] as? [String: Any] {
      let fields = ["openblasCore", "kernelCPU", "threads", "probe", "openblas"].compactMap { k in n[k].map { "\(k) \($0)" } }
      out += "<p><b>Numerics fingerprint</b>: \(SVGChart.escape(fields.joined(separator: ", ")))</p>"
    }
    if let config = s["config"], let data = try? JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
      out += "<p><b>Config</b> (\(SVGChart.escape(files.statePath ?? ""))):</p><pre>\(SVGChart.escape(String(decoding: data, as: UTF8.self)))</pre>"
    }
    if !version.isEmpty { out += "<p>igpt \(SVGChart.escape(version))</p>" }
    return out
  }

  static func page(title: String, body: String) -> String {
    """
    <!DOCTYPE html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <title>\(SVGChart.escape(title))</title>
    <style>
    body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 12px; color: #222; }
    figure { margin: 12px 0; } svg.chart { width: 100%; height: auto; max-width: 720px; background: #fff; }
    svg .axis { stroke: #444; } svg .grid { stroke: #ddd; } svg .tick, svg .legend { font-size: 11px; } svg .title { font-size: 14px; font-weight: 600; }
    svg .label { font-size: 12px; } svg polyline { stroke-width: 1.6; } svg .reference line { stroke: #888; stroke-dasharray: 6 4; }
    svg .reference text { font-size: 11px; fill: #555; } svg .mark circle { fill: none; stroke: #000; stroke-width: 2; } svg .mark text { font-size: 11px; }
    figcaption, .meta { color: #666; font-size: 12px; } img { max-width: 100%; image-rendering: pixelated; }
    .strip { display: flex; flex-wrap: wrap; gap: 8px; } .strip figure { margin: 4px 0; } .strip img { width: 240px; }
    table { border-collapse: collapse; font-size: 13px; display: block; overflow-x: auto; } td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
    .missing { background: #fff6dd; padding: 4px 12px; border-radius: 4px; } pre { overflow-x: auto; background: #f6f6f6; padding: 8px; }
    </style></head><body>
    \(body)
    </body></html>

    """
  }
}
