import Foundation
import IGPTTestSupport
import Testing

/// `igpt vqvae train` and `eval` as real processes on a small generated folder dataset.
@Suite(.serialized) struct VQVAECommandTests {
  /// A patterned 8x8 RGB folder dataset with train and test splits, and a small config for it.
  static func setUp(steps: Int = 8, extra: String = "") throws -> (dataset: String, config: String) {
    let src = Fixtures.directory("e2evqvaedata")
    Fixtures.folderDataset(at: src + "/train", classes: ["a", "b"], perClass: 24, side: 8)
    Fixtures.folderDataset(at: src + "/test", classes: ["a", "b"], perClass: 6, side: 8)
    let config = Fixtures.directory("e2evqvaeconfig") + "/vq.yaml"
    try """
      model: {resolution: 8, hiddens: 8, residual_hiddens: 4, residual_layers: 1, embedding_dim: 4, codes: 16, downsample: 4}
      data: {dataset: \(src), val_fraction: 0.25}
      train: {steps: \(steps), batch: 4, lr: 0.003, seed: 1, log_every: 1, val_every: 4, val_images: 8}
      checkpoint: {every: 100, keep: 2}
      \(extra)
      """.write(toFile: config, atomically: true, encoding: .utf8)
    return (src, config)
  }

  static func records(_ path: String) throws -> [[String: Any]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
      .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
  }

  /// Stopped at step 4 and resumed, a run writes the same checkpoint bytes and metrics as one
  /// uninterrupted run; a second fresh start in the same directory is refused.
  @Test func stopAndResumeGiveTheSameBytesAsOneRun() throws {
    let (_, config) = try Self.setUp()
    let dir = Fixtures.directory("e2evqvaeresume")
    let a = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir + "/a"])
    #expect(a.status == 0, "\(a.stderr)")
    let b1 = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir + "/b", "--stop-at", "4"])
    #expect(b1.status == 0, "\(b1.stderr)")
    let again = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir + "/b"])
    #expect(again.status != 0 && again.stderr.contains("--resume"), "\(again.stderr)")
    let b2 = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir + "/b", "--resume"])
    #expect(b2.status == 0, "\(b2.stderr)")
    for f in ["vqvae.safetensors", "optimizer.safetensors"] {
      let x = FileManager.default.contents(atPath: dir + "/a/checkpoints/step-00000008/" + f)
      let y = FileManager.default.contents(atPath: dir + "/b/checkpoints/step-00000008/" + f)
      #expect(x != nil && x == y, "\(f) differs")
    }
    let one = try Self.records(dir + "/a/metrics.jsonl"), two = try Self.records(dir + "/b/metrics.jsonl")
    #expect(one.filter { $0["loss"] != nil }.compactMap { $0["step"] as? Int } == Array(1...8))
    #expect(two.filter { $0["loss"] != nil }.compactMap { $0["step"] as? Int } == Array(1...8))
    #expect(one.filter { $0["loss"] != nil }.map { $0["loss"] as! Double } == two.filter { $0["loss"] != nil }.map { $0["loss"] as! Double })
    #expect(one.filter { $0["val_mse"] != nil }.compactMap { $0["step"] as? Int } == [4, 8])
    // eval: one JSON line over the test split, the fields the issue names, plausible values
    let e = try IGPTBinary.run(["vqvae", "eval", "--vqvae", dir + "/a", "--split", "test"])
    #expect(e.status == 0, "\(e.stderr)")
    let j = try IGPTBinary.json(e.stdout)
    #expect(j["images"] as? Int == 12 && j["split"] as? String == "test" && j["step"] as? Int == 8)
    let mse = j["mse"] as? Double ?? -1, psnr = j["psnr_db"] as? Double ?? -1
    #expect(mse > 0 && mse < 0.25 && abs(psnr - 10 * log10(1 / mse)) < 1e-9)
    #expect((j["codes_used"] as? Int ?? 0) >= 1 && (j["perplexity"] as? Double ?? 0) >= 1)
  }

  /// A corrupt newest checkpoint is skipped with a warning: the run resumes from the one before.
  @Test func aCorruptCheckpointIsSkipped() throws {
    let (_, config) = try Self.setUp(extra: "")
    let dir = Fixtures.directory("e2evqvaecorrupt")
    for stop in ["3", "6"] {
      let r = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir, "--stop-at", stop, "--resume"])
      #expect(r.status == 0, "\(r.stderr)")
    }
    let bad = dir + "/checkpoints/step-00000006/vqvae.safetensors"
    var bytes = try Data(contentsOf: URL(fileURLWithPath: bad))
    bytes[bytes.count - 3] ^= 0xFF
    try bytes.write(to: URL(fileURLWithPath: bad))
    let r = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir, "--resume", "--stop-at", "7"])
    #expect(r.status == 0 && r.stderr.contains("skipping checkpoint") && r.stderr.contains("checksum mismatch"), "\(r.stderr)")
    #expect(r.stderr.contains("step 3 of 7"), "\(r.stderr)")
  }

  @Test(arguments: [
    ("model: {codes: 1}", "codes"), ("train: {batch: 0}", "train.batch"), ("quantizer: {decay: 1.5}", "quantizer.decay"),
    ("model: {resolution: 30}", "multiple"), ("train: {colour: red}", "unknown key 'train.colour'"),
  ])
  func badConfigsGiveOneErrorLine(_ yaml: String, _ word: String) throws {
    let (dataset, _) = try Self.setUp()
    let config = Fixtures.directory("e2evqvaebad") + "/bad.yaml"
    try "data: {dataset: \(dataset)}\n\(yaml)\n".write(toFile: config, atomically: true, encoding: .utf8)
    let r = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", Fixtures.directory("e2evqvaebadrun")])
    #expect(r.status != 0 && r.stderr.contains(word), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
  }
}
