import Foundation
import IGPTData
import IGPTKernels

/// One `bench-cluster` setting run end to end: its synthetic data, the processes, and what
/// the coordinator's events.jsonl and wait4 say about them.
enum ClusterBench {
  struct Setting {
    var workers: Int
    /// Parameter-server shard processes (0: the coordinator sums and serves).
    var shards: Int
    var codec: String
    var layers: Int
    var embd: Int
    var heads: Int
    var steps: Int
    var microbatches: Int
    var port: Int
  }

  /// What one setting measured, over its timed steps.
  struct Result {
    var timedSteps = 0
    var seconds = 0.0, compute = 0.0, transfer = 0.0, wait = 0.0
    var bytesIn = 0.0, bytesOut = 0.0, gradients = 0.0
    var coordinatorPeakBytes = 0
    var shardPeakBytes: Int?
    /// Bytes of one encoded gradient (all its slices).
    var gradientBytes = 0

    func json(_ s: Setting, parameters: Int) -> [String: Any] {
      let n = Double(max(timedSteps, 1))
      func r(_ x: Double, _ digits: Double = 1000) -> Double { (x * digits).rounded() / digits }
      let gradientsIn = gradients * Double(gradientBytes)  // received by the coordinator, or by the shards together
      var out: [String: Any] = ["workers": s.workers, "shards": s.shards, "codec": s.codec, "layers": s.layers, "embd": s.embd, "parameters": parameters,
              "microbatches_per_step": s.microbatches, "timed_steps": timedSteps,
              "steps_per_s": r(Double(timedSteps) / max(seconds, 1e-9)), "gradient_gb_per_s": r(gradientsIn / max(seconds, 1e-9) / 1e9),
              "gradient_bytes": gradientBytes,
              "bytes_per_step": Int((bytesIn + bytesOut) / n), "bytes_in_per_step": Int(bytesIn / n), "bytes_out_per_step": Int(bytesOut / n),
              "gradients_per_step": r(gradients / n, 10), "step_s": r(seconds / n), "coordinator_s": r(transfer / n), "wait_s": r(wait / n),
              "coordinator_peak_rss_mb": coordinatorPeakBytes / (1 << 20)]
      if let shardPeakBytes { out["shard_peak_rss_mb"] = shardPeakBytes / (1 << 20) }
      return out
    }
  }

  /// A token store of random 8x8 grey images (64 tokens, 16 colours), prepared by the real pipeline.
  static func syntheticStore(in dir: String, images: Int) throws -> String {
    let src = dir + "/idx", store = dir + "/store"
    if FileManager.default.fileExists(atPath: store) { return store }
    try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
    var rng = SeededRandom(seed: 7)
    func idx(_ dims: [Int], _ bytes: [UInt8]) -> Data {
      var d = Data([0, 0, 8, UInt8(dims.count)])
      for v in dims { withUnsafeBytes(of: UInt32(v).bigEndian) { d.append(contentsOf: $0) } }
      return d + Data(bytes)
    }
    for (name, n) in [("train", images), ("t10k", 16)] {
      let pixels = (0..<(n * 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      try idx([n, 8, 8], pixels).write(to: URL(fileURLWithPath: "\(src)/\(name)-images-idx3-ubyte"))
      try idx([n], (0..<n).map { UInt8($0 % 10) }).write(to: URL(fileURLWithPath: "\(src)/\(name)-labels-idx1-ubyte"))
    }
    var o = Preparation.Options(dataset: src, resolution: 8, out: store)
    o.paletteSize = 16
    o.valFraction = 0
    _ = try Preparation.run(o) { _, _, _ in }
    return store
  }

  /// Runs the coordinator and the emulated workers of one setting to the end of its steps.
  static func run(_ s: Setting, store: String, dir: String) throws -> Result {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let config = dir + "/bench.yaml"
    try """
      model: {layers: \(s.layers), embd: \(s.embd), heads: \(s.heads), objective: ar}
      data: {store: \(store)}
      train: {steps: \(s.steps), batch: \(s.microbatches), microbatch: 1, val_every: 0, log_every: 1}
      checkpoint: {every: 1000000}
      cluster: {codec: \(s.codec), heartbeat_misses: 30}

      """.write(toFile: config, atomically: true, encoding: .utf8)
    let endpoint = "tcp://127.0.0.1:\(s.port)"
    let coordinator = try Spawned(["coordinator", "--config", config, "--run", dir + "/run", "--bind", endpoint, "--wait-for", "\(s.workers)",
                                   "--shards", "\(s.shards)"], log: dir + "/coordinator.log")
    let shards = try (0..<s.shards).map {
      try Spawned(["server", "--connect", endpoint, "--bind", "tcp://127.0.0.1:\(s.port + 1 + $0)", "--name", "s\($0)", "--give-up-after", "20"],
                  log: dir + "/s\($0).log")
    }
    defer { for p in shards { p.end() } }
    let workers = try (0..<s.workers).map {
      try Spawned(["worker", "--connect", endpoint, "--emulate", "--name", "e\($0)", "--give-up-after", "20"], log: dir + "/e\($0).log")
    }
    defer { for w in workers { w.end() } }
    guard let status = coordinator.wait(timeout: 1800), status == 0 else {
      coordinator.end()
      let tail = ((try? String(contentsOfFile: dir + "/coordinator.log", encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
      throw CleanError("bench-cluster: the coordinator of the \(s.workers)-worker setting failed (\(dir)/coordinator.log: \(tail))")
    }
    var r = measured(events: dir + "/run/events.jsonl")
    r.coordinatorPeakBytes = coordinator.peakBytes
    if !shards.isEmpty {
      for p in shards { _ = p.wait(timeout: 30) }
      r.shardPeakBytes = shards.map(\.peakBytes).max()
    }
    try? FileManager.default.removeItem(atPath: dir + "/run/checkpoints")  // hundreds of MB per setting
    return r
  }

  /// The timed steps' records summed (the first step is left out: workers were still joining).
  static func measured(events path: String) -> Result {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    let steps = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
      .filter { $0["event"] as? String == "step" }.sorted { ($0["step"] as? Int ?? 0) < ($1["step"] as? Int ?? 0) }.dropFirst()
    var r = Result()
    for e in steps {
      func v(_ k: String) -> Double { (e[k] as? Double) ?? Double(e[k] as? Int ?? 0) }
      r.timedSteps += 1
      r.seconds += v("step_s")
      r.compute += v("compute_s")
      r.transfer += v("transfer_s")
      r.wait += v("wait_s")
      r.bytesIn += v("wire_bytes_in")
      r.bytesOut += v("wire_bytes_out")
      r.gradients += v("gradients_in")
    }
    return r
  }
}

/// A child igpt process (posix_spawn, output to a log file) whose peak memory wait4 reports.
final class Spawned {
  let pid: pid_t
  private(set) var peakBytes = 0
  private var status: Int32?

  init(_ args: [String], log: String) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var p: pid_t = 0
    guard posix_spawn(&p, exe, &actions, nil, argv, environ) == 0 else { throw CleanError("bench-cluster: cannot start \(exe) \(args[0])") }
    pid = p
  }

  /// The exit status, or nil when it did not end within `timeout` seconds.
  func wait(timeout: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while status == nil {
      var st: Int32 = 0
      var usage = rusage()
      let r = wait4(pid, &st, WNOHANG, &usage)
      if r == pid {
        status = (st & 0x7F) == 0 ? (st >> 8) & 0xFF : 128 + (st & 0x7F)
        peakBytes = usage.ru_maxrss * 1024
      } else if r < 0 || Date() >= deadline {
        return nil
      } else {
        usleep(20_000)
      }
    }
    return status
  }

  /// Ends it (SIGTERM, then SIGKILL after 5 s) unless it has ended.
  func end() {
    guard status == nil else { return }
    kill(pid, SIGTERM)
    if wait(timeout: 5) == nil {
      kill(pid, SIGKILL)
      _ = wait(timeout: 5)
    }
  }
}
