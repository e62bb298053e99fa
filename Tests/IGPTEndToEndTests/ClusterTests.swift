import Foundation
import IGPTCluster
import IGPTTestSupport
import Testing

/// `igpt coordinator` and `igpt worker` as real processes on loopback sockets: the model they
/// train is byte-identical to `igpt train`'s, whatever happens to the processes.
@Suite(.serialized) struct ClusterTests {
  struct Setup {
    let store: String
    let config: String
    let dir: String
    /// `igpt train`'s final model and optimizer for the config.
    let reference: (model: Data, optimizer: Data)
    let steps: Int
  }

  static let steps = 120

  /// An 8x8, 4-colour store, a config with 4 microbatches per step and fast heartbeats, and
  /// the single-host reference run.
  /// `augment`: with data.augment on (shifts and mirrors drawn per image).
  static func setUp(_ name: String, steps: Int = steps, clip: Double = 1, augment: Bool = false) throws -> Setup {
    let src = Fixtures.directory("cluster-src")
    Fixtures.folderDataset(at: src + "/train", classes: ["a", "b"], perClass: 24, side: 8)
    Fixtures.folderDataset(at: src + "/test", classes: ["a", "b"], perClass: 4, side: 8)
    let dir = Fixtures.directory(name)
    let store = dir + "/store"
    let p = try IGPTBinary.run(["prepare", "--dataset", src, "--resolution", "8", "--palette", "4", "--out", store])
    guard p.status == 0 else { throw ClusterError("prepare failed: \(p.stderr)") }
    let config = dir + "/run.yaml"
    try """
      model: {layers: 2, embd: 32, heads: 2, objective: ar}
      data: {store: \(store)\(augment ? ", augment: {translate: 2, flip: true}" : "")}
      train: {steps: \(steps), batch: 8, microbatch: 2, lr: 0.01, warmup: 5, clip: \(clip), seed: 3, threads: 1, log_every: 1, val_every: 40, val_images: 6}
      checkpoint: {every: 20, keep: 10}
      cluster: {heartbeat_interval: 0.2, heartbeat_misses: 5, task_timeout: 10}
      """.write(toFile: config, atomically: true, encoding: .utf8)
    let t = try IGPTBinary.run(["train", "--config", config, "--run", dir + "/reference"])
    guard t.status == 0 else { throw ClusterError("train failed: \(t.stderr)") }
    let last = dir + "/reference/checkpoints/" + String(format: "step-%08d", steps)
    return Setup(store: store, config: config, dir: dir,
                 reference: (try Data(contentsOf: URL(fileURLWithPath: last + "/model.safetensors")),
                             try Data(contentsOf: URL(fileURLWithPath: last + "/optimizer.safetensors"))), steps: steps)
  }

  func coordinator(_ s: Setup, run: String, port: Int, extra: [String] = []) throws -> ClusterProcess {
    try ClusterProcess("coordinator-\(run)-\(UUID().uuidString.prefix(4))",
                       ["coordinator", "--config", s.config, "--run", s.dir + "/" + run, "--bind", "tcp://127.0.0.1:\(port)"] + extra,
                       logDir: s.dir)
  }

  func worker(_ s: Setup, port: Int, name: String) throws -> ClusterProcess {
    try ClusterProcess(name, ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--name", name, "--give-up-after", "60"], logDir: s.dir)
  }

  /// The run's final files equal the single-host reference.
  func expectIdentical(_ s: Setup, run: String, logs: [ClusterProcess]) {
    let last = s.dir + "/" + run + "/checkpoints/" + String(format: "step-%08d", s.steps)
    let model = FileManager.default.contents(atPath: last + "/model.safetensors")
    let optimizer = FileManager.default.contents(atPath: last + "/optimizer.safetensors")
    #expect(model != nil && model == s.reference.model, "model differs: \(logs.map { "--- \($0.name)\n\($0.log)" }.joined())")
    #expect(optimizer != nil && optimizer == s.reference.optimizer, "optimizer differs")
  }

  @Test func oneWorkerAndThreeWorkersMatchSingleHostTraining() throws {
    let s = try Self.setUp("cluster-basic")
    let c1 = try coordinator(s, run: "one", port: 5711)
    let w = try worker(s, port: 5711, name: "solo")
    #expect(c1.wait(timeout: 120) == 0, "\(c1.log)")
    #expect(w.wait(timeout: 10) == 0, "\(w.log)")
    #expect(w.log.contains("run finished"))
    expectIdentical(s, run: "one", logs: [c1, w])
    // one worker gets each step's 4 microbatches as one block: one gradient a step crosses the wire
    let solo = ClusterProcess.stepRecords(runDir: s.dir + "/one")
    #expect(solo.count == s.steps && solo.allSatisfy { $0["gradients_in"] as? Int == 1 }, "\(solo.prefix(3))")
    #expect(ClusterProcess.events(runDir: s.dir + "/one", "step").count == s.steps)
    // the coordinator draws samples at each validation (val_every 40) into RUN/samples as igpt train does
    for step in stride(from: 40, through: s.steps, by: 40) {
      let png = try? Data(contentsOf: URL(fileURLWithPath: s.dir + "/one" + String(format: "/samples/step-%08d.png", step)))
      #expect(png?.starts(with: [0x89, 0x50, 0x4E, 0x47]) == true, "no samples at step \(step)")
    }
    // its report: the step time split from every step event, the worker's microbatches at the end
    #expect(try IGPTBinary.run(["report", s.dir + "/one"]).status == 0)
    let html = try String(contentsOfFile: s.dir + "/one/report.html", encoding: .utf8)
    let split = try #require(ReportTests.charts(html)["Step time split (seconds)"])
    #expect(split.series["compute"]?.map { $0[0] } == (1...s.steps).map(Double.init))
    let row = html.range(of: "<tr><td>solo</td><td>[0-9]+</td>", options: .regularExpression).map { String(html[$0]) } ?? ""
    #expect((Int(row.dropFirst(21).prefix { $0.isNumber }) ?? 0) >= 4 * s.steps, "\(row)")

    let c3 = try coordinator(s, run: "three", port: 5712)
    let ws = try (1...3).map { try worker(s, port: 5712, name: "w\($0)") }
    #expect(c3.wait(timeout: 120) == 0, "\(c3.log)")
    for w in ws { #expect(w.wait(timeout: 10) == 0, "\(w.log)") }
    expectIdentical(s, run: "three", logs: [c3] + ws)
    // the work was really shared
    #expect(ws.filter { $0.log.contains("microbatches here") && !$0.log.contains("(0 microbatches") }.count >= 2, "\(ws.map(\.log))")
    #expect(ClusterProcess.events(runDir: s.dir + "/three", "join").count == 3)
    let steps = ClusterProcess.events(runDir: s.dir + "/three", "step")
    #expect(steps.count == s.steps && steps.allSatisfy { ($0["gradients_in"] as? Int ?? 0) >= 1 && ($0["gradients_in"] as? Int ?? 9) <= 4 })
    #expect(steps.allSatisfy { ($0["step_s"] as? Double ?? -1) >= ($0["compute_s"] as? Double ?? 0) })
  }

  @Test func aWorkerKilledAndAnotherJoiningDoNotChangeTheModel() throws {
    // A longer run, so the kill and the join both land well inside it; with augmentation, whose
    // draws the coordinator makes per image, so no worker can change them
    let s = try Self.setUp("cluster-kill", steps: 600, augment: true)
    let c = try coordinator(s, run: "k", port: 5721)
    let ws = try (1...3).map { try worker(s, port: 5721, name: "k\($0)") }
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/k") >= 30 })
    ws[1].kill(SIGKILL)
    let killedAt = ClusterProcess.loggedStep(runDir: s.dir + "/k")
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/k") >= killedAt + 30 })
    let late = try worker(s, port: 5721, name: "late")
    let joinedAt = ClusterProcess.loggedStep(runDir: s.dir + "/k")
    #expect(c.wait(timeout: 180) == 0, "\(c.log)")
    #expect(joinedAt < s.steps - 100, "the run ended too soon after the kill (\(killedAt)) and join (\(joinedAt))")
    #expect(c.log.contains("worker k2"))
    #expect(c.log.contains("worker k2 (127.0.0.1) lost"))
    #expect(c.log.contains("worker late joined"))
    // killed: unreachable (a leave) or silent (dead), whichever the coordinator saw first
    #expect((ClusterProcess.events(runDir: s.dir + "/k", "dead") + ClusterProcess.events(runDir: s.dir + "/k", "leave"))
      .contains { $0["worker"] as? String == "k2" })
    #expect(ClusterProcess.events(runDir: s.dir + "/k", "join").contains { $0["worker"] as? String == "late" })
    for w in [ws[0], ws[2], late] { #expect(w.wait(timeout: 10) == 0, "\(w.log)") }
    expectIdentical(s, run: "k", logs: [c, late])
  }

  /// A worker that keeps heartbeating but never finishes its microbatch (stuck in a kernel) is
  /// not dead: after cluster.task_timeout its microbatches also go to another worker, and the
  /// run ends with the same model.
  @Test func aStuckWorkersMicrobatchesAreHandedToAnother() throws {
    let s = try Self.setUp("cluster-stuck")
    let config = s.dir + "/stuck.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "task_timeout: 10", with: "task_timeout: 2")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let port = 5781
    let c = try ClusterProcess("coordinator-stuck", ["coordinator", "--config", config, "--run", s.dir + "/st", "--bind", "tcp://127.0.0.1:\(port)"],
                               logDir: s.dir)
    let stuck = try ClusterProcess("stuck", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--name", "stuck", "--give-up-after", "60",
                                             "--debug-stall-after", "3"], logDir: s.dir)
    // it hangs on its fourth microbatch, inside step 0; only then does a healthy worker join
    #expect(ClusterProcess.waitFor(timeout: 30) { c.log.contains("also handing it to another worker") }, "\(c.log)")
    #expect(ClusterProcess.loggedStep(runDir: s.dir + "/st") < 1)
    let healthy = try worker(s, port: port, name: "healthy")
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(healthy.wait(timeout: 10) == 0, "\(healthy.log)")
    stuck.kill(SIGKILL)
    expectIdentical(s, run: "st", logs: [c, stuck, healthy])
    #expect(!ClusterProcess.events(runDir: s.dir + "/st", "reissued").isEmpty)
  }

  @Test func aKilledCoordinatorResumesAndWorkersReconnectOnTheirOwn() throws {
    let s = try Self.setUp("cluster-resume")
    let c1 = try coordinator(s, run: "r", port: 5731)
    let ws = try (1...2).map { try worker(s, port: 5731, name: "r\($0)") }
    #expect(ClusterProcess.waitFor(timeout: 60) { FileManager.default.fileExists(atPath: s.dir + "/r/checkpoints/step-00000040") })
    c1.kill(SIGKILL)
    c1.wait(timeout: 10)
    let c2 = try coordinator(s, run: "r", port: 5731, extra: ["--resume"])
    #expect(c2.wait(timeout: 120) == 0, "\(c2.log)")
    #expect(c2.log.contains("resumed from"))
    for w in ws {
      #expect(w.wait(timeout: 10) == 0, "\(w.log)")
      #expect(w.log.contains("reconnecting") || w.log.contains("saying hello again"), "\(w.log)")
    }
    expectIdentical(s, run: "r", logs: [c2] + ws)
    // the steps logged after checkpoint 40 and before the kill are in metrics.jsonl once
    let logged = ClusterProcess.stepRecords(runDir: s.dir + "/r").compactMap { $0["step"] as? Int }
    #expect(logged == Array(1...s.steps), "\(logged)")
  }

  @Test func garbageOnTheSocketIsDroppedAndChangesNothing() throws {
    let s = try Self.setUp("cluster-garbage")
    let c = try coordinator(s, run: "g", port: 5741)
    let w = try worker(s, port: 5741, name: "g1")
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/g") >= 5 })
    let attacker = try ZMQSocket(.dealer)
    try attacker.connect("tcp://127.0.0.1:5741")
    let valid = Message(.result, runHash: 42, version: 3, meta: Data("{}".utf8), body: Data(repeating: 7, count: 100)).encode()
    var wrongVersion = Message(.hello, meta: Data("{}".utf8)).encode()
    wrongVersion[4] = 99
    var badChecksum = valid
    badChecksum[badChecksum.count - 1] ^= 0xFF
    var rng = SystemRandomNumberGenerator()
    let garbage: [[Data]] = [
      [Data((0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) })],  // random bytes
      [Data()],  // empty
      [valid.prefix(30)],  // shorter than a header
      [valid.prefix(valid.count - 10)],  // truncated
      [badChecksum],
      [wrongVersion],
      [valid, valid],  // two frames
      [valid],  // a result from a peer that never said hello, for another run
      [Message(.task, meta: Data("{}".utf8)).encode()],  // a message only coordinators send
      [Message(.hello, meta: Data("not json".utf8)).encode()],
    ]
    for _ in 0..<20 { for g in garbage { attacker.send(g) } }
    // the wrong-version hello got a clear refusal
    var refusal = ""
    let deadline = Date().addingTimeInterval(10)
    while refusal.isEmpty && Date() < deadline {
      if attacker.poll(timeout: 0.2), let r = attacker.receive(), let m = try? Message.decode(r.frames[0]), m.kind == .refuse {
        refusal = (try? m.decodeMeta(Wire.Refuse.self).reason) ?? ""
      }
    }
    #expect(refusal.contains("protocol version"), "\(refusal)")
    // oversized: far beyond the largest gradient this model can send
    attacker.send([Data(count: 8 << 20)])
    attacker.close()
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(c.log.contains("dropped"))
    #expect(w.wait(timeout: 10) == 0)
    expectIdentical(s, run: "g", logs: [c, w])
  }

  @Test func refusalsAndStatus() throws {
    let s = try Self.setUp("cluster-refuse")
    // A slow run (long schedule) so status can be asked while it trains.
    let c = try coordinator(s, run: "s", port: 5751, extra: ["--steps", "100000"])
    let w = try worker(s, port: 5751, name: "st1")
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/s") >= 3 })
    let st = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:5751", "--json"])
    #expect(st.status == 0, "\(st.stderr)")
    let j = try IGPTBinary.json(st.stdout)
    #expect((j["step"] as? Int ?? 0) >= 3)
    let workers = j["workers"] as? [[String: Any]] ?? []
    #expect(workers.count == 1 && workers.first?["name"] as? String == "st1")
    #expect((workers.first?["microbatchesDone"] as? Int ?? 0) > 0)
    #expect((workers.first?["bytesSent"] as? Int ?? 0) > 0)
    let text = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:5751"])
    #expect(text.stdout.contains("worker st1") && text.stdout.contains("checkpoint at step"))
    // a worker started with another config is refused with the reason
    let other = s.dir + "/other.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "lr: 0.01", with: "lr: 0.02")
      .write(toFile: other, atomically: true, encoding: .utf8)
    let r = try IGPTBinary.run(["worker", "--connect", "tcp://127.0.0.1:5751", "--config", other, "--give-up-after", "10"])
    #expect(r.status == 2, "\(r.stderr)")
    #expect(r.stderr.contains("train.lr"), "\(r.stderr)")
    // SIGTERM: the coordinator writes a checkpoint and exits 0; the worker keeps waiting for it
    c.kill(SIGTERM)
    #expect(c.wait(timeout: 30) == 0, "\(c.log)")
    #expect(c.log.contains("continue with --resume"))
    #expect(!checkpoints(in: s.dir + "/s").isEmpty)
    w.kill(SIGTERM)
    #expect(w.wait(timeout: 10) == 0, "\(w.log)")
    // no coordinator: status says so in one line
    let none = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:5751", "--timeout", "1"])
    #expect(none.status != 0 && none.stderr.contains("no answer"))
  }

  @Test func bf16GradientsTrainCloseToLossless() throws {
    let s = try Self.setUp("cluster-bf16")
    let config = s.dir + "/bf16.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "cluster: {", with: "cluster: {codec: bf16, ")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let c = try ClusterProcess("coordinator-bf16", ["coordinator", "--config", config, "--run", s.dir + "/b", "--bind", "tcp://127.0.0.1:5761"],
                               logDir: s.dir)
    let w = try worker(s, port: 5761, name: "b1")
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(w.wait(timeout: 10) == 0)
    #expect(w.log.contains("bf16 gradients"))
    func lastLoss(_ run: String) -> Double? {
      let text = (try? String(contentsOfFile: s.dir + "/" + run + "/metrics.jsonl", encoding: .utf8)) ?? ""
      return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double }.last
    }
    let lossless = try #require(lastLoss("reference"))
    let bf16 = try #require(lastLoss("b"))
    #expect(abs(bf16 - lossless) / lossless < 0.05, "bf16 \(bf16) vs lossless \(lossless)")
    // not byte-identical (rounded gradients), but a model all the same
    let model = FileManager.default.contents(atPath: s.dir + "/b/checkpoints/" + String(format: "step-%08d", s.steps) + "/model.safetensors")
    #expect(model != nil && model != s.reference.model)
  }

  @Test func withoutKeysOnlyLoopbackUnlessInsecure() throws {
    let s = try Self.setUp("cluster-insecure")
    let r = try IGPTBinary.run(["coordinator", "--config", s.config, "--run", s.dir + "/x", "--bind", "tcp://0.0.0.0:5771"])
    #expect(r.status != 0 && r.stderr.contains("--insecure"), "\(r.stderr)")
    let c = try coordinator(s, run: "y", port: 5772, extra: ["--steps", "100000"])
    defer { c.kill() }
    // loopback is fine without the flag; --insecure on a wildcard address is said in the log and status
    let c2 = try ClusterProcess("coordinator-insecure", ["coordinator", "--config", s.config, "--run", s.dir + "/z", "--bind",
                                                           "tcp://0.0.0.0:5773", "--insecure"], logDir: s.dir)
    defer { c2.kill() }
    // (the warning is its own line, after "listening": wait for it, not for the first)
    #expect(ClusterProcess.waitFor(timeout: 20) { c2.log.contains("listening") && c2.log.contains("--insecure") }, "\(c2.log)")
    let st = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:5773"])
    #expect(st.stdout.contains("INSECURE"), "\(st.stdout)\(st.stderr)")
    let st2 = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:5772"])
    #expect(st2.status == 0 && !st2.stdout.contains("INSECURE"))
  }

  /// Step directories of a run.
  func checkpoints(in dir: String) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints"))?.filter { $0.hasPrefix("step-") } ?? []
  }
}
