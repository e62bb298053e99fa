import Foundation

/// What a run directory holds for a report, read once: metrics.jsonl, probes.jsonl, probe JSON
/// files (`probe run --out`), events.jsonl, PNG images and the newest checkpoint's state.json,
/// each record with the file and line it came from. Missing or unreadable files are noted, not
/// fatal.
struct RunFiles {
  /// One JSON object of a JSON-lines file and its 1-based line.
  struct Record {
    var line: Int
    var object: [String: Any]
    func double(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
    func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
  }

  /// A probe evaluation: a scheduled or submitted job, or a `probe run --out` file.
  struct ProbeResult {
    var source: String
    var step: Int?
    var bestLayer: String?
    var labelsPerClass: Int?
    /// Train images the probe was fitted on (nil: not recorded).
    var trainImages: Int?
    var results: [[String: Any]]
    /// The protocol, for grouping probes that can be compared: "5000 train images", "25 per class".
    var protocolName: String {
      labelsPerClass.map { "\($0) per class" } ?? trainImages.map { "\($0) train images" } ?? "probes"
    }
  }

  let runDir: String
  var metrics: [Record] = []
  var events: [Record] = []
  var probes: [ProbeResult] = []
  var images: [(name: String, png: Data)] = []
  /// The samples drawn at each validation (RUN/samples/step-N.png), in step order.
  var stepSamples: [(step: Int, png: Data)] = []
  /// The newest checkpoint's state.json, and its path.
  var state: [String: Any]?
  var statePath: String?
  /// Files that were there but could not be read, with why.
  var problems: [String] = []

  init(runDir: String) {
    self.runDir = runDir
    metrics = lines("metrics.jsonl")
    events = lines("events.jsonl")
    for r in lines("probes.jsonl") where (r.object["state"] as? String) == "done" {
      probes.append(ProbeResult(source: "probes.jsonl line \(r.line)", step: r.int("step"), bestLayer: r.object["bestLayer"] as? String,
                                labelsPerClass: (r.object["request"] as? [String: Any])?["labelsPerClass"] as? Int,
                                trainImages: (r.object["request"] as? [String: Any])?["trainImages"] as? Int,
                                results: r.object["results"] as? [[String: Any]] ?? []))
    }
    let fm = FileManager.default
    let top = ((try? fm.contentsOfDirectory(atPath: runDir)) ?? []).sorted()
    for name in top where name.hasSuffix(".json") {
      guard let data = fm.contents(atPath: path(name)), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let results = o["results"] as? [[String: Any]] else { continue }
      probes.append(ProbeResult(source: name, step: Self.step(ofCheckpoint: o["checkpoint"] as? String), bestLayer: o["bestLayer"] as? String,
                                labelsPerClass: o["labelsPerClass"] as? Int, trainImages: o["trainImages"] as? Int, results: results))
    }
    for name in top where name.lowercased().hasSuffix(".png") {
      if let png = fm.contents(atPath: path(name)), png.starts(with: [0x89, 0x50, 0x4E, 0x47]) { images.append((name, png)) }
    }
    for name in ((try? fm.contentsOfDirectory(atPath: path("samples"))) ?? []).sorted() where name.hasSuffix(".png") {
      if let step = Self.step(ofCheckpoint: String(name.dropLast(4))), let png = fm.contents(atPath: path("samples/" + name)),
         png.starts(with: [0x89, 0x50, 0x4E, 0x47]) { stepSamples.append((step, png)) }
    }
    stepSamples.sort { $0.step < $1.step }
    let checkpoints = ((try? fm.contentsOfDirectory(atPath: path("checkpoints"))) ?? []).filter { $0.hasPrefix("step-") }.sorted()
    if let newest = checkpoints.last {
      let p = path("checkpoints/\(newest)/state.json")
      if let data = fm.contents(atPath: p), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
        state = o
        statePath = "checkpoints/\(newest)/state.json"
      } else {
        problems.append("checkpoints/\(newest)/state.json is unreadable")
      }
    }
  }

  func path(_ name: String) -> String { (runDir as NSString).appendingPathComponent(name) }

  /// A JSON-lines file's objects with their lines (a torn or non-object line is skipped).
  private func lines(_ name: String) -> [Record] {
    guard let data = FileManager.default.contents(atPath: path(name)) else { return [] }
    var out: [Record] = []
    for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
      if let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] { out.append(Record(line: i + 1, object: o)) }
    }
    return out
  }

  /// The step of a checkpoint path ".../step-00000540" (nil when it names none).
  static func step(ofCheckpoint path: String?) -> Int? {
    guard let path, let r = path.range(of: "step-[0-9]+", options: [.regularExpression, .backwards]) else { return nil }
    return Int(path[r].dropFirst(5))
  }

  /// The records that have `key`, and the lines they span ("lines 3-540").
  func series(_ records: [Record], _ key: String, x: String = "step") -> (points: [(x: Double, y: Double)], lines: String) {
    let rs = records.filter { $0.double(key) != nil && $0.double(x) != nil }
    let lines = rs.isEmpty ? "" : rs.count == 1 ? "line \(rs[0].line)" : "lines \(rs.first!.line)-\(rs.last!.line)"
    return (rs.map { ($0.double(x)!, $0.double(key)!) }, lines)
  }
}
