import Foundation
import IGPTTestSupport
import Testing

/// Probe jobs on a running cluster: submitted, scheduled, listed, and kept across a coordinator kill.
@Suite(.serialized) struct ProbeJobTests {
  func list(_ port: Int, extra: [String] = []) throws -> [[String: Any]] {
    let r = try IGPTBinary.run(["probe", "list", "--coordinator", "tcp://127.0.0.1:\(port)", "--json"] + extra)
    guard r.status == 0 else { return [] }
    return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
  }

  @Test func aSubmittedProbeCompletesWhileTrainingAndIsListed() throws {
    let s = try ClusterTests.setUp("probe-submit", steps: 600)
    let port = 5841
    let c = try ClusterProcess("coordinator", ["coordinator", "--config", s.config, "--run", s.dir + "/p", "--bind", "tcp://127.0.0.1:\(port)"],
                               logDir: s.dir)
    // layers 0 and 1 of 2: workers' passes stop at layer 1 and send two layers, not three
    let sub = try IGPTBinary.run(["probe", "submit", "--coordinator", "tcp://127.0.0.1:\(port)", "--layers", "0,1", "--train-images", "40",
                                  "--eval-images", "10"])
    #expect(sub.status == 0 && sub.stdout.contains("queued probe 1"), "\(sub.stdout)\(sub.stderr)")
    let bad = try IGPTBinary.run(["probe", "submit", "--coordinator", "tcp://127.0.0.1:\(port)", "--layers", "9"])
    #expect(bad.status != 0 && bad.stderr.contains("--layers 9"), "\(bad.stderr)")
    // the same options as `igpt probe run`: low-data, concatenation around the best layer, pixels
    let full = try IGPTBinary.run(["probe", "submit", "--coordinator", "tcp://127.0.0.1:\(port)", "--layers", "1,2", "--train-images", "40",
                                   "--eval-images", "10", "--labels-per-class", "2", "--concat", "2", "--raw-pixels"])
    #expect(full.status == 0 && full.stdout.contains("queued probe 2") && full.stdout.contains("2 labels per class"), "\(full.stdout)\(full.stderr)")
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"], logDir: s.dir)
    #expect(ClusterProcess.waitFor(timeout: 90) { (try? list(port).allSatisfy { $0["state"] as? String == "done" }) == true }, "\(c.log)")
    let jobs = try list(port)
    let job = try #require(jobs.first { $0["id"] as? Int == 1 })
    let results = job["results"] as? [[String: Any]] ?? []
    #expect(results.map { $0["features"] as? String } == ["0", "1"])
    #expect(results.allSatisfy { ($0["testAccuracy"] as? Double ?? -1) >= 0 })
    #expect(job["step"] as? Int != nil)
    let fullJob = try #require(jobs.first { $0["id"] as? Int == 2 })
    let names = (fullJob["results"] as? [[String: Any]] ?? []).map { $0["features"] as? String ?? "?" }
    #expect(names.count == 4 && names.prefix(2) == ["1", "2"] && names.last == "pixels" && names[2].contains("+"), "\(names)")
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(w.wait(timeout: 10) == 0)
    let lines = try String(contentsOfFile: s.dir + "/p/probes.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 2 && lines.allSatisfy { $0.contains("\"bestLayer\"") })
    // the probe's feature work did not change training: same model as igpt train
    let last = s.dir + "/p/checkpoints/" + String(format: "step-%08d", s.steps)
    #expect(FileManager.default.contents(atPath: last + "/model.safetensors") == s.reference.model)
  }

  @Test func queuedJobsSurviveACoordinatorKill() throws {
    let s = try ClusterTests.setUp("probe-restart")
    let port = 5851
    let run = s.dir + "/q"
    // No worker yet: the job stays queued.
    let c1 = try ClusterProcess("c1", ["coordinator", "--config", s.config, "--run", run, "--bind", "tcp://127.0.0.1:\(port)"], logDir: s.dir)
    let sub = try IGPTBinary.run(["probe", "submit", "--coordinator", "tcp://127.0.0.1:\(port)", "--layers", "2", "--train-images", "40"])
    #expect(sub.status == 0, "\(sub.stderr)")
    c1.kill(SIGKILL)
    c1.wait(timeout: 10)
    let c2 = try ClusterProcess("c2", ["coordinator", "--config", s.config, "--run", run, "--bind", "tcp://127.0.0.1:\(port)", "--resume"],
                                logDir: s.dir)
    // back in the queue, and started again (on the resumed parameters) as soon as it can be
    #expect(ClusterProcess.waitFor(timeout: 20) { ["queued", "running"].contains((try? list(port).first?["state"] as? String) ?? "") }, "\(c2.log)")
    #expect(c2.log.contains("1 queued"))
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"], logDir: s.dir)
    #expect(c2.wait(timeout: 120) == 0, "\(c2.log)")
    w.wait(timeout: 10)
    let jobs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/probe-jobs.json"))) as? [[String: Any]] ?? []
    #expect(jobs.count == 1 && jobs.first?["state"] as? String == "done", "\(jobs)")
  }

  /// Runs `igpt probe run` on the checkpoint of the step a finished job used, and expects every
  /// number of every probe to be the job's: features, fits and accuracies are the same bytes.
  func expectSameAsProbeRun(_ job: [String: Any], run: String, _ s: ClusterTests.Setup, _ flags: [String]) throws {
    let step = try #require(job["step"] as? Int)
    let out = s.dir + "/probe-run-\(step)-\(UUID().uuidString.prefix(4)).json"
    let r = try IGPTBinary.run(["probe", "run", "--checkpoint", run + String(format: "/checkpoints/step-%08d", step), "--out", out] + flags)
    #expect(r.status == 0, "\(r.stderr)")
    let offline = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])?["results"] as? [[String: Any]] ?? []
    let online = job["results"] as? [[String: Any]] ?? []
    #expect(offline.count == online.count && !online.isEmpty, "\(offline) vs \(online)")
    for (a, b) in zip(offline, online) {
      for key in ["features", "width", "l2", "trainAccuracy", "valAccuracy", "testAccuracy", "grid"] {
        #expect((a[key] as? NSObject).map { $0.isEqual(b[key]) } == true, "probe \(a["features"] ?? "?") \(key): probe run \(a[key] ?? "-"), job \(b[key] ?? "-")")
      }
    }
  }

  /// A BERT run's probe job averages each image's features over several random masks, the
  /// passes spread over the workers like any feature microbatch; its results are exactly those
  /// of `igpt probe run` with the same seed on the same checkpoint (masks, low-data selection
  /// and averaging are one rule for both).
  @Test func aBERTProbeAveragesOverMasksAsProbeRunDoes() throws {
    let s = try ClusterTests.setUp("probe-bert", steps: 40)
    let port = 5871
    let config = s.dir + "/bert.yaml"
    try (String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "objective: ar", with: "objective: bert")
      + "\nprobes: {every: 20, layers: \"1,2\", train_images: 40, eval_images: 40, masks: 3, labels_per_class: 3, seed: 5}\n")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let c = try ClusterProcess("c", ["coordinator", "--config", config, "--run", s.dir + "/bert", "--bind", "tcp://127.0.0.1:\(port)"], logDir: s.dir)
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"], logDir: s.dir)
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    w.wait(timeout: 10)
    let lines = try String(contentsOfFile: s.dir + "/bert/probes.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 2 && lines.allSatisfy { $0.contains("\"state\":\"done\"") && $0.contains("\"masks\":3") }, "\(lines)")
    let job = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
    try expectSameAsProbeRun(job, run: s.dir + "/bert", s, ["--layers", "1,2", "--limit", "40", "--masks", "3", "--labels-per-class", "3",
                                                             "--seed", "5", "--threads", "2", "--batch", "3"])
  }

  /// With shards too: the job's snapshot is pulled from them (the coordinator's copy is stale).
  @Test(arguments: [0, 2])
  func aScheduledProbeRunsEveryNSteps(shards: Int) throws {
    let s = try ClusterTests.setUp("probe-schedule-\(shards)")
    let port = 5861 + shards
    let config = s.dir + "/scheduled.yaml"
    try (String(contentsOfFile: s.config, encoding: .utf8) + "\nprobes: {every: 60, layers: \"2\", train_images: 40, eval_images: 10, raw_pixels: true}\n")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let c = try ClusterProcess("c", ["coordinator", "--config", config, "--run", s.dir + "/sch", "--bind", "tcp://127.0.0.1:\(port)",
                                     "--shards", "\(shards)"], logDir: s.dir)
    let servers = try (0..<shards).map {
      try ClusterProcess("s\($0)", ["server", "--connect", "tcp://127.0.0.1:\(port)", "--bind", "tcp://127.0.0.1:\(6461 + $0)", "--give-up-after", "30"],
                         logDir: s.dir)
    }
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"], logDir: s.dir)
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    for p in servers + [w] { p.wait(timeout: 10) }
    let lines = try String(contentsOfFile: s.dir + "/sch/probes.jsonl", encoding: .utf8).split(separator: "\n")
    // steps 60 and 120, each on the parameters of the step it started at
    #expect(lines.count == 2, "\(c.log)")
    #expect(lines.allSatisfy { $0.contains("\"origin\":\"schedule\"") })
    #expect(lines.allSatisfy { $0.contains("\"features\":\"pixels\"") }, "probes.raw_pixels adds the pixel baseline")
    // the job at step 60 is `igpt probe run` on step 60's checkpoint, to the last bit
    let job = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
    try expectSameAsProbeRun(job, run: s.dir + "/sch", s, ["--layers", "2", "--limit", "40", "--raw-pixels"])
  }
}

extension ProbeJobTests {
  @Test func probeRunAndFineTuneOnOneHost() throws {
    let s = try ClusterTests.setUp("probe-run")
    let ref = s.dir + "/reference"
    let r = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--layers", "all", "--raw-pixels", "--concat", "2", "--out", s.dir + "/p.json"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("<- best layer"))
    let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.dir + "/p.json"))) as? [String: Any] ?? [:]
    let names = (j["results"] as? [[String: Any]] ?? []).compactMap { $0["features"] as? String }
    #expect(names.prefix(3) == ["0", "1", "2"] && names.contains("pixels") && names.contains { $0.contains("+") }, "\(names)")
    #expect((j["featureTokensPerSecond"] as? Double ?? 0) > 0)
    func results(_ path: String) throws -> [String: [String: Any]] {
      let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
      var byName: [String: [String: Any]] = [:]
      for r in j["results"] as? [[String: Any]] ?? [] { byName[r["features"] as? String ?? "?"] = r }
      return byName
    }
    let all = try results(s.dir + "/p.json")
    // a pass that stops at layer 1 (of 2) gives layer 1 the same features, hence the same fit
    let one = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--layers", "1", "--out", s.dir + "/p1.json"])
    #expect(one.status == 0 && one.stderr.contains("forward passes stop at layer 1"), "\(one.stderr)")
    let layer1 = try results(s.dir + "/p1.json")
    #expect(layer1.keys.sorted() == ["1"])
    for key in ["l2", "trainAccuracy", "valAccuracy", "testAccuracy"] {
      #expect(layer1["1"]?[key] as? Double == all["1"]?[key] as? Double, "\(key)")
    }
    // the pixel baseline alone, from a store: the same solver on the same pixels, the same numbers
    let px = try IGPTBinary.run(["probe", "run", "--raw-pixels", "--data", s.store, "--out", s.dir + "/px.json"])
    #expect(px.status == 0 && px.stderr.contains("raw pixels of"), "\(px.stderr)")
    let pixels = try results(s.dir + "/px.json")
    #expect(pixels.keys.sorted() == ["pixels"])
    #expect(pixels["pixels"]?["testAccuracy"] as? Double == all["pixels"]?["testAccuracy"] as? Double)
    let neither = try IGPTBinary.run(["probe", "run", "--layers", "1"])
    #expect(neither.status != 0 && neither.stderr.contains("give --checkpoint"), "\(neither.stderr)")
    let ignored = try IGPTBinary.run(["probe", "run", "--raw-pixels", "--data", s.store, "--layers", "1"])
    #expect(ignored.status != 0 && ignored.stderr.contains("need --checkpoint"), "\(ignored.stderr)")
    let noStore = try IGPTBinary.run(["probe", "run", "--raw-pixels", "--data", s.dir + "/missing"])
    #expect(noStore.status != 0 && noStore.stderr.contains("missing") && !noStore.stderr.contains("Fatal"), "\(noStore.stderr)")
    let headRate = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", "--finetune-head-lr", "0"])
    #expect(headRate.status != 0 && headRate.stderr.contains("--finetune-head-lr must be positive"), "\(headRate.stderr)")
    let every = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", "--finetune-eval-every", "0"])
    #expect(every.status != 0 && every.stderr.contains("--finetune-eval-every must be at least 1"), "\(every.stderr)")
    for (flag, value, error) in [("--finetune-head-images", "5", "--finetune-head-images must be at least 10"),
                                 ("--finetune-val-images", "0", "--finetune-val-images must be at least 1"),
                                 ("--finetune-steps", "0", "--finetune-steps must be at least 1")] {
      let bad = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", flag, value])
      #expect(bad.status != 0 && bad.stderr.contains(error), "\(flag) \(value): \(bad.stderr)")
    }
    let benchLayers = try IGPTBinary.run(["bench", "--features", "--feature-layers", "9", "--layers", "2"])
    #expect(benchLayers.status != 0 && benchLayers.stderr.contains("--feature-layers 9: expected"), "\(benchLayers.stderr)")
    let zero = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--batch", "0"])
    #expect(zero.status != 0 && zero.stderr.contains("--batch must be at least 1"), "\(zero.stderr)")
    // in a log (not a terminal) a long phase prints progress lines as it goes, not only when done
    let logged = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--layers", "1", "--batch", "8"], environment: ["IGPT_PROGRESS_SECONDS": "0"])
    #expect(logged.status == 0 && logged.stderr.contains(#/features \d+/\d+ \(\d+%\) after \d+s/#) && logged.stderr.contains("features done in"),
            "\(logged.stderr)")
    let unparsable = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--layers", "1", "--batch", "8"], environment: ["IGPT_PROGRESS_SECONDS": "soon"])
    #expect(unparsable.status == 0 && unparsable.stderr.contains("ignoring IGPT_PROGRESS_SECONDS=soon (not a number of seconds >= 0)"), "\(unparsable.stderr)")
    let low = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--layers", "1", "--labels-per-class", "3"])
    #expect(low.status == 0 && low.stderr.contains("6 train"), "\(low.stderr)")
    let ft = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", "--finetune-head", "probe", "--finetune-steps", "20", "--finetune-head-lr", "0.003",
                                 "--finetune-eval-every", "10", "--finetune-out", s.dir + "/ft"], environment: ["IGPT_PROGRESS_SECONDS": "0"])
    #expect(ft.status == 0 && ft.stdout.contains("fine-tuned (L_GEN + L_CLF)"), "\(ft.stderr)")
    // between evaluations a log shows the steps done
    #expect(ft.stderr.contains(#/fine-tune steps 1\d/20 \(\d+%\) after \d+s/#) && ft.stderr.contains("fine-tune steps done in"), "\(ft.stderr)")
    #expect(ft.stderr.contains(#/fine-tune: step 10  L_gen \d\.\d{4}  L_clf \d\.\d{4}  val accuracy \d\.\d{4}  \(\d+\.\d images\/s\)/#), "\(ft.stderr)")
    for f in ["model.safetensors", "classifier.safetensors", "finetune.json"] {
      #expect(FileManager.default.fileExists(atPath: s.dir + "/ft/" + f), "\(f)")
    }
    // a finished fine-tune is not overwritten: refused before any work; nothing temporary is left
    let again = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", "--finetune-steps", "1", "--finetune-out", s.dir + "/ft"])
    #expect(again.status != 0 && again.stderr.contains("--finetune-out \(s.dir)/ft already exists"), "\(again.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: s.dir).filter { $0.hasPrefix(".ft") }.isEmpty)
    let tuned = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.dir + "/ft/finetune.json"))) as? [String: Any] ?? [:]
    #expect(tuned["headLearningRate"] as? Double == 0.003 && tuned["learningRate"] as? Double == 3e-4, "\(tuned)")
    #expect((tuned["history"] as? [[Double]])?.map { $0[0] } == [10, 20], "evaluated every 10 steps")
    // a head started from a linear probe on the same features: fine-tuning's step 0 is that
    // probe's val accuracy, measured through the model's own path (raw features, folded head)
    #expect(tuned["headFromProbe"] as? Bool == true && tuned["cosine"] as? Bool == false, "\(tuned)")
    let probeVal = try #require(ft.stderr.firstMatch(of: #/head from a linear probe on layer 2 \(\d+ train images\): l2 \S+, train \S+, val (\S+)/#)?.1)
    let stepZero = try #require(ft.stderr.firstMatch(of: #/step 0 val accuracy (\S+) \(head from a linear probe\)/#)?.1)
    #expect(probeVal == stepZero && Double(stepZero)! > 0, "\(ft.stderr)")
    let zeroHead = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", "--finetune-cosine",
                                       "--finetune-steps", "4", "--finetune-eval-every", "2", "--finetune-val-images", "3", "--finetune-out", s.dir + "/ft0"])
    #expect(zeroHead.status == 0 && zeroHead.stderr.contains("(zero classifier)") && !zeroHead.stderr.contains("head from a linear probe"), "\(zeroHead.stderr)")
    let tuned0 = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.dir + "/ft0/finetune.json"))) as? [String: Any] ?? [:]
    #expect(tuned0["headFromProbe"] as? Bool == false && tuned0["cosine"] as? Bool == true, "\(tuned0)")
    // accuracies on 3 of the 5 val images are multiples of 1/3
    let accs = (tuned0["history"] as? [[Double]])?.map { $0[3] * 3 } ?? []
    #expect(accs.count == 2 && accs.allSatisfy { abs($0 - $0.rounded()) < 1e-9 }, "\(tuned0)")
    let badHead = try IGPTBinary.run(["probe", "run", "--checkpoint", ref, "--finetune", "--finetune-head", "best"])
    #expect(badHead.status != 0 && badHead.stderr.contains("--finetune-head must be probe or zero (got best)"), "\(badHead.stderr)")
    // the fine-tuned model loads like any checkpoint
    let e = try IGPTBinary.run(["eval", "--checkpoint", s.dir + "/ft/model.safetensors", "--split", "test", "--data", s.store])
    #expect(e.status == 0, "\(e.stderr)")
  }
}
