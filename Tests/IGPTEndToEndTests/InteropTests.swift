import Foundation
import IGPTData
import IGPTTestSupport
@testable import IGPTTraining
import Testing

/// Checkpoints as Hugging Face ImageGPT directories: every step directory is one, `igpt export`
/// writes a clean one, and igpt reads them back (no Python needed here; `make interop` checks
/// them against transformers itself).
@Suite(.serialized) struct InteropTests {
  @Test func stepDirectoriesAndExportsAreHFDirectoriesIgptReadsBack() throws {
    let s = try ClusterTests.setUp("interop", steps: 20)
    let step = s.dir + "/reference/checkpoints/step-00000020"
    for f in ["config.json", "preprocessor_config.json", "model.safetensors"] {
      #expect(FileManager.default.fileExists(atPath: step + "/" + f), "\(f)")
    }
    let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: step + "/config.json"))) as? [String: Any])
    #expect(config["vocab_size"] as? Int == 5 && config["n_layer"] as? Int == 2 && config["n_positions"] as? Int == 64, "\(config)")
    // the palette HF's image processor gets is the store's
    #expect(try Palette.load(from: step) == (try TokenStore(path: s.store).palette))
    let out = s.dir + "/hf"
    let e = try IGPTBinary.run(["export", "--checkpoint", s.dir + "/reference", "--out", out])
    #expect(e.status == 0, "\(e.stderr)")
    let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    #expect(files == ["config.json", "model.safetensors", "preprocessor_config.json"], "\(files)")
    func loss(_ checkpoint: String) throws -> Double? {
      let r = try IGPTBinary.run(["eval", "--checkpoint", checkpoint, "--data", s.store, "--split", "test"])
      return (try? IGPTBinary.json(r.stdout))?["loss_nats"] as? Double
    }
    let reference = try loss(step)
    let exported = try loss(out)
    #expect(reference != nil && exported == reference)
    // the export loads as igpt's own step directory does, also when given its model.safetensors
    #expect(try loss(out + "/model.safetensors") == reference)
    // sampling from the HF directory takes its palette from preprocessor_config.json
    let sample = try IGPTBinary.run(["sample", "--checkpoint", out, "--count", "2", "--out", s.dir + "/hf-samples.png"])
    #expect(sample.status == 0 && FileManager.default.fileExists(atPath: s.dir + "/hf-samples.png"), "\(sample.stderr)")
    // prepare takes the palette from a HF directory (its preprocessor_config.json)
    let src = Fixtures.directory("interop-src")
    Fixtures.folderDataset(at: src + "/train", classes: ["a", "b"], perClass: 6, side: 8)
    let fromHF = try IGPTBinary.run(["prepare", "--dataset", src, "--resolution", "8", "--palette-from", out,
                                     "--out", s.dir + "/store-from-hf"])
    #expect(fromHF.status == 0, "\(fromHF.stderr)")
    #expect(try TokenStore(path: s.dir + "/store-from-hf").palette == (try TokenStore(path: s.store).palette))
    let again = try IGPTBinary.run(["export", "--checkpoint", out, "--out", out])
    #expect(again.status != 0 && again.stderr.contains("already exists"), "\(again.stderr)")
    // HF's ImageGPT is causal only
    let bert = s.dir + "/bert.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "objective: ar", with: "objective: bert")
      .write(toFile: bert, atomically: true, encoding: .utf8)
    #expect(try IGPTBinary.run(["train", "--config", bert, "--run", s.dir + "/b", "--steps", "2"]).status == 0)
    let refused = try IGPTBinary.run(["export", "--checkpoint", s.dir + "/b", "--out", s.dir + "/hf-bert"])
    #expect(refused.status != 0 && refused.stderr.contains("causal only") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    #expect(!FileManager.default.fileExists(atPath: s.dir + "/hf-bert"))
  }

  /// The event file of a run killed with SIGKILL mid-training still reads, and the resumed run
  /// continues it without repeating a step; the coordinator writes one too.
  @Test func eventFilesSurviveAKillAndAResume() throws {
    let s = try ClusterTests.setUp("tensorboard", steps: 400)
    let run = s.dir + "/tb"
    func events() throws -> [Tensorboard_Event] {
      let file = try Data(contentsOf: URL(fileURLWithPath: run + "/tensorboard/" + TensorBoardLog.fileName))
      return try TFRecord.records(file).map { try Tensorboard_Event(serializedBytes: $0.data) }
    }
    let config = s.dir + "/tb.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "checkpoint: {every: 20", with: "checkpoint: {every: 50")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let t = try ClusterProcess("train", ["train", "--config", config, "--run", run], logDir: s.dir)
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: run) >= 120 })
    t.kill(SIGKILL)
    t.wait(timeout: 10)
    let killed = try events()
    #expect(killed.count > 100 && killed.first?.fileVersion == "brain.Event:2", "the killed run's file reads: \(killed.count) records")
    let resumed = try IGPTBinary.run(["train", "--config", config, "--run", run, "--resume"])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    let all = try events().dropFirst()
    // every (step, tag) once, steps only forward, up to the last step
    let pairs = all.flatMap { e in e.summary.value.map { "\(e.step) \($0.tag)" } }
    #expect(Set(pairs).count == pairs.count, "a step written twice")
    #expect(zip(all, all.dropFirst()).allSatisfy { $0.step <= $1.step }, "steps go forward only")
    #expect(all.last?.step == Int64(s.steps))
    #expect(pairs.contains("\(s.steps) loss") && pairs.contains("\(s.steps) val_loss") && pairs.contains("1 lr"))
    // samples at every validation (val_every 40): a PNG grid
    let samples = all.filter { $0.summary.value.first?.tag == "samples" }
    #expect(samples.map(\.step) == stride(from: 40, through: Int64(s.steps), by: 40).map { $0 }, "\(samples.map(\.step))")
    #expect(samples.allSatisfy { $0.summary.value[0].image.encodedImageString.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]) })
    // the coordinator writes the same file
    let c = try ClusterProcess("c", ["coordinator", "--config", s.config, "--run", s.dir + "/ctb", "--bind", "tcp://127.0.0.1:5951"], logDir: s.dir)
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:5951", "--give-up-after", "30"], logDir: s.dir)
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    w.wait(timeout: 10)
    let cluster = try TFRecord.records(try Data(contentsOf: URL(fileURLWithPath: s.dir + "/ctb/tensorboard/" + TensorBoardLog.fileName)))
    #expect(cluster.count > s.steps, "\(cluster.count) records")
  }
}
