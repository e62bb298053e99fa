import Foundation
import IGPTTestSupport
import Testing

/// `igpt train`, `eval`, `sample` and `complete` as real processes on a small generated store.
@Suite(.serialized) struct TrainCommandTests {
  /// A patterned folder dataset prepared at 4x4 with 4 colours, and a config file for it.
  static func setUp(steps: Int = 8, extra: String = "", data: String = "") throws -> (store: String, config: String) {
    let src = Fixtures.directory("e2etrain")
    Fixtures.folderDataset(at: src + "/train", classes: ["a", "b"], perClass: 24, side: 8)
    Fixtures.folderDataset(at: src + "/test", classes: ["a", "b"], perClass: 4, side: 8)
    let base = Fixtures.directory("e2etrainout")
    let store = base + "/store"
    let r = try IGPTBinary.run(["prepare", "--dataset", src, "--resolution", "4", "--palette", "4", "--out", store])
    guard r.status == 0 else { throw CocoaError(.fileWriteUnknown) }
    let config = base + (extra + data == "" ? "/run.yaml" : "/run-\(UUID().uuidString.prefix(8)).yaml")
    try """
      model: {layers: 2, embd: 16, heads: 2, objective: ar}
      data: {store: \(store)\(data)}
      train: {steps: \(steps), batch: 8, microbatch: 4, lr: 0.01, warmup: 2, seed: 1, log_every: 1, val_every: 4, val_images: 8}
      checkpoint: {every: 100, keep: 3}
      \(extra)
      """.write(toFile: config, atomically: true, encoding: .utf8)
    return (store, config)
  }

  @Test(arguments: [false, true]) func stopAndResumeGiveTheSameBytesAsOneRun(augmented: Bool) throws {
    let (_, config) = try Self.setUp(data: augmented ? ", augment: {translate: 1, flip: true}" : "")
    let dir = Fixtures.directory("e2eresume\(augmented)")
    let a = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/a"])
    #expect(a.status == 0, "\(a.stderr)")
    let b1 = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/b", "--stop-at", "4"])
    #expect(b1.status == 0, "\(b1.stderr)")
    let again = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/b"])
    #expect(again.status != 0 && again.stderr.contains("--resume"))
    // as if it had gone on to log steps 5 and 6 and been killed before their checkpoint
    let metrics = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/b/metrics.jsonl"))
    metrics.seekToEndOfFile()
    metrics.write(Data("{\"loss\":9,\"step\":5}\n{\"loss\":9,\"step\":6}\n{\"loss\":9,\"st".utf8))
    try metrics.close()
    let b2 = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/b", "--resume"])
    #expect(b2.status == 0, "\(b2.stderr)")
    #expect(b2.stderr.contains("resumed from"))
    for f in ["model.safetensors", "optimizer.safetensors"] {
      let x = FileManager.default.contents(atPath: dir + "/a/checkpoints/step-00000008/" + f)
      let y = FileManager.default.contents(atPath: dir + "/b/checkpoints/step-00000008/" + f)
      #expect(x != nil && x == y, "\(f) differs")
    }
    // metrics: one JSON object per line, with step and loss, and validation entries
    let lines = try String(contentsOfFile: dir + "/a/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    #expect(objects.count == lines.count)
    #expect(objects.filter { $0["loss"] != nil }.count == 8)
    #expect(objects.contains { $0["val_loss"] != nil })
    // the resumed run recorded steps 5 and 6 once, its own, and the same steps as one run
    let resumed = try String(contentsOfFile: dir + "/b/metrics.jsonl", encoding: .utf8).split(separator: "\n")
      .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    #expect(resumed.filter { $0["loss"] != nil }.compactMap { $0["step"] as? Int } == Array(1...8))
    #expect(!resumed.contains { $0["loss"] as? Double == 9 })
    #expect(resumed.filter { $0["val_loss"] != nil }.compactMap { $0["step"] as? Int } == [4, 8])
  }

  @Test func sigtermStopsWithACheckpoint() throws {
    let (_, config) = try Self.setUp(steps: 100_000)
    let dir = Fixtures.directory("e2esigterm")
    let p = Process()
    p.executableURL = IGPTBinary.url
    p.arguments = ["train", "--config", config, "--run", dir]
    p.standardError = FileHandle.nullDevice  // an unread pipe would fill up and block the child
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    // wait for the first logged steps, then ask it to stop
    let metrics = dir + "/metrics.jsonl"
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && !FileManager.default.fileExists(atPath: metrics) { usleep(20_000) }
    usleep(200_000)
    kill(p.processIdentifier, SIGTERM)
    p.waitUntilExit()
    #expect(p.terminationReason == .exit && p.terminationStatus == 0)
    let ckpts = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints")) ?? []).sorted()
    #expect(!ckpts.isEmpty)
    // stopped long before the end, with a checkpoint of the step it stopped at
    let last = try #require(ckpts.last)
    let step = Int(last.dropFirst(5)) ?? 0
    #expect(step > 0 && step < 100_000)
    let lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
    let lastLogged = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
    #expect((lastLogged?["step"] as? Int) ?? -1 <= step)
    let resumed = try IGPTBinary.run(["train", "--config", config, "--run", dir, "--resume", "--stop-at", "1"])
    #expect(resumed.stderr.contains("nothing to do") || resumed.stderr.contains("resumed"))
  }

  @Test func evalSampleAndComplete() throws {
    let (store, config) = try Self.setUp()
    let dir = Fixtures.directory("e2eeval")
    #expect(try IGPTBinary.run(["train", "--config", config, "--run", dir]).status == 0)
    // samples that cannot be written (RUN/samples is a file) are said on the validation line;
    // training goes on to its end and checkpoint
    let blocked = Fixtures.directory("e2eeval-blocked")
    try "not a directory".write(toFile: blocked + "/samples", atomically: true, encoding: .utf8)
    let b = try IGPTBinary.run(["train", "--config", config, "--run", blocked])
    #expect(b.status == 0 && b.stderr.contains("step 4: val loss") && b.stderr.contains("samples not written to \(blocked)/samples"), "\(b.stderr)")
    #expect(FileManager.default.fileExists(atPath: blocked + "/checkpoints/step-00000008/model.safetensors"))
    let e = try IGPTBinary.run(["eval", "--checkpoint", dir, "--split", "test"])
    #expect(e.status == 0, "\(e.stderr)")
    let j = try IGPTBinary.json(e.stdout)
    let loss = try #require(j["loss_nats"] as? Double)
    #expect(abs((j["bits_per_token"] as? Double ?? 0) - loss / log(2)) < 1e-9)
    #expect(j["images"] as? Int == 8)
    // a .npy batch: the same loss as scoring it through the store's first test images is not
    // required; check the refusal of out-of-palette tokens and bad shapes
    let npy = dir + "/bad.npy"
    var header = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 16), }"
    header += String(repeating: " ", count: 64 - (10 + header.count + 1) % 64) + "\n"
    var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0]) + Data(header.utf8)
    var toks = [Int32](repeating: 1, count: 16)
    toks[3] = 9
    toks.withUnsafeBytes { d.append(contentsOf: $0) }
    try d.write(to: URL(fileURLWithPath: npy))
    let bad = try IGPTBinary.run(["eval", "--checkpoint", dir, "--tokens", npy])
    #expect(bad.status != 0 && bad.stderr.contains("token 9 is outside the palette"))
    let s = try IGPTBinary.run(["sample", "--checkpoint", dir, "--count", "3", "--seed", "2", "--out", dir + "/s.png"])
    #expect(s.status == 0, "\(s.stderr)")
    let s2 = try IGPTBinary.run(["sample", "--checkpoint", dir, "--count", "3", "--seed", "2", "--out", dir + "/s2.png", "--no-kv-cache"])
    #expect(s2.status == 0)
    #expect(FileManager.default.contents(atPath: dir + "/s.png") == FileManager.default.contents(atPath: dir + "/s2.png"))
    let c = try IGPTBinary.run(["complete", "--checkpoint", dir, "--split", "test", "--count", "4", "--out", dir + "/c.png", "--data", store])
    #expect(c.status == 0, "\(c.stderr)")
    #expect(FileManager.default.contents(atPath: dir + "/c.png")?.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
  }

  /// probes.every in `igpt train`: probes of the parameters of every N-th step, recorded as a
  /// coordinator records its jobs, the same after a stop and resume, and the same as `probe run`.
  @Test func scheduledProbesRunInTrainAndResumeExactly() throws {
    let (_, config) = try Self.setUp(extra: "probes: {every: 4, layers: all, train_images: 1000, eval_images: 1000, raw_pixels: true}")
    let dir = Fixtures.directory("e2eprobes")
    let a = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/a"])
    #expect(a.status == 0 && a.stderr.contains("probe of step 4"), "\(a.stderr)")
    func jobs(_ run: String) -> [[String: Any]] {
      ((try? String(contentsOfFile: dir + "/" + run + "/probes.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
        .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
    /// Each job's step and, per result, everything but the timings.
    func outcome(_ run: String) -> [String] {
      jobs(run).map { j in
        let results = (j["results"] as? [[String: Any]] ?? []).map { r in
          ["features", "l2", "trainAccuracy", "valAccuracy", "testAccuracy"].map { "\(r[$0] ?? "nil")" }.joined(separator: " ")
            + " " + ((r["grid"] as? [String: Double]) ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        return "\(j["step"] ?? "nil") \(j["state"] ?? "nil") \(j["origin"] ?? "nil"): " + results.joined(separator: "; ")
      }
    }
    let ja = jobs("a")
    #expect(ja.compactMap { $0["step"] as? Int } == [4, 8], "\(ja)")
    for j in ja {
      let features = (j["results"] as? [[String: Any]] ?? []).compactMap { $0["features"] as? String }
      #expect(features == ["0", "1", "2", "pixels"] && j["state"] as? String == "done" && j["bestLayer"] != nil, "\(j)")
    }
    // the probed step was checkpointed before its probe
    #expect(FileManager.default.fileExists(atPath: dir + "/a/checkpoints/step-00000004/model.safetensors"))
    // stopped at 4, resumed: the same records; a probe the process died in runs again on resume
    let b1 = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/b", "--stop-at", "4"])
    #expect(b1.status == 0 && jobs("b").count == 1, "\(b1.stderr)")
    let b2 = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/b", "--resume"])
    #expect(b2.status == 0, "\(b2.stderr)")
    #expect(outcome("b") == outcome("a") && outcome("a").count == 2, "\(outcome("a"))\n\(outcome("b"))")
    let text = try String(contentsOfFile: dir + "/b/probes.jsonl", encoding: .utf8)
    try String(text.split(separator: "\n")[0] + "\n").write(toFile: dir + "/b/probes.jsonl", atomically: true, encoding: .utf8)
    let b3 = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/b", "--resume"])
    #expect(b3.status == 0 && b3.stderr.contains("probe of step 8") && outcome("b") == outcome("a"), "\(b3.stderr)")
    // `probe run` on the step-4 checkpoint gives the scheduled probe's numbers
    let p = try IGPTBinary.run(["probe", "run", "--checkpoint", dir + "/a/checkpoints/step-00000004", "--layers", "all", "--raw-pixels",
                                "--out", dir + "/p4.json"])
    #expect(p.status == 0, "\(p.stderr)")
    let offline = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/p4.json"))) as? [String: Any])
    let scheduled = (ja.first?["results"] as? [[String: Any]]) ?? []
    let mine = (offline["results"] as? [[String: Any]]) ?? []
    #expect(mine.count == scheduled.count)
    // the iteration limit reaches the solver: one iteration per strength cannot converge, and says so
    let capped = try IGPTBinary.run(["probe", "run", "--checkpoint", dir + "/a/checkpoints/step-00000004", "--layers", "1", "--max-iterations", "1"])
    #expect(capped.status == 0 && capped.stderr.contains("L-BFGS stopped at its iteration limit"), "\(capped.stderr)")
    for (x, y) in zip(mine, scheduled) {
      for key in ["features", "l2", "trainAccuracy", "valAccuracy", "testAccuracy"] { #expect("\(x[key] ?? "")" == "\(y[key] ?? "")", "\(key)") }
    }
  }

  @Test func configErrorsAreOneLine() throws {
    let (_, config) = try Self.setUp()
    var text = try String(contentsOfFile: config, encoding: .utf8)
    text += "\nextra: {x: 1}\n"
    let bad = config + ".bad.yaml"
    try text.write(toFile: bad, atomically: true, encoding: .utf8)
    let r = try IGPTBinary.run(["train", "--config", bad, "--run", Fixtures.directory("e2ecfg") + "/r"])
    #expect(r.status != 0)
    #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("unknown key 'extra'"))
  }
}
