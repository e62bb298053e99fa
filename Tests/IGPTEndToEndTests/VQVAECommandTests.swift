import Foundation
import IGPTCluster
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
    // show: original | reconstruction, an RGB PNG; bench: one JSON line
    let show = try IGPTBinary.run(["vqvae", "show", "--vqvae", dir + "/a", "--split", "test", "--count", "4", "--out", dir + "/r.png"])
    let png = FileManager.default.contents(atPath: dir + "/r.png") ?? Data()
    #expect(show.status == 0 && png.count > 33 && png[1] == 0x50 && png[25] == 2, "\(show.stderr)")
    let bench = try IGPTBinary.run(["vqvae", "bench", "--resolution", "8", "--batch", "2", "--steps", "1", "--hiddens", "8", "--residual-hiddens", "4",
                                    "--embedding-dim", "4", "--codes", "16"])
    #expect(bench.status == 0 && ((try? IGPTBinary.json(bench.stdout))?["images_per_s"] as? Double ?? 0) > 0, "\(bench.stderr)")
    let bad = try IGPTBinary.run(["vqvae", "bench", "--resolution", "30"])
    #expect(bad.status != 0 && bad.stderr.contains("multiple") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
    // eval: one JSON line over the test split, the fields the issue names, plausible values
    let e = try IGPTBinary.run(["vqvae", "eval", "--vqvae", dir + "/a", "--split", "test"])
    #expect(e.status == 0, "\(e.stderr)")
    let j = try IGPTBinary.json(e.stdout)
    #expect(j["images"] as? Int == 12 && j["split"] as? String == "test" && j["step"] as? Int == 8)
    let mse = j["mse"] as? Double ?? -1, psnr = j["psnr_db"] as? Double ?? -1
    #expect(mse > 0 && mse < 0.25 && abs(psnr - 10 * log10(1 / mse)) < 1e-9)
    #expect((j["codes_used"] as? Int ?? 0) >= 1 && (j["perplexity"] as? Double ?? 0) >= 1)
  }

  /// SIGINT in the middle of a long run: it stops after the step it is in, with a checkpoint of
  /// that step, well inside StopSignal's grace; --resume continues from there.
  @Test func sigintStopsWithACheckpointAndResumes() throws {
    let (_, config) = try Self.setUp(steps: 1_000_000)
    let dir = Fixtures.directory("e2evqvaesigint")
    let p = Process()
    p.executableURL = IGPTBinary.url
    p.arguments = ["vqvae", "train", "--config", config, "--run", dir]
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    Thread.sleep(forTimeInterval: 2)
    let sent = Date()
    kill(p.processIdentifier, SIGINT)
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(Date().timeIntervalSince(sent) < 2 && p.terminationStatus == 0, "\(text)")
    #expect(text.contains("stopped by SIGINT"), "\(text)")
    let step = Int(try #require(text.split(separator: "\n").last { $0.hasPrefix("stopped by") }?.split(separator: " ").dropFirst(5).first.map(String.init)?.trimmingCharacters(in: .punctuationCharacters)) ?? "") ?? -1
    #expect(step > 0 && FileManager.default.fileExists(atPath: dir + String(format: "/checkpoints/step-%08d/state.json", step)), "\(text)")
    let r = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir, "--resume", "--stop-at", "\(step + 2)"])
    #expect(r.status == 0 && r.stderr.contains("step \(step) of \(step + 2)"), "\(r.stderr)")
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

  /// A VQ-VAE trained on setUp's dataset (8x8 -> 2x2 codes of 16) in DIR/vq, and the latent
  /// store it encodes in DIR/store (val fraction 0.25, seed 1).
  static func latentStore(in dir: String) throws -> (dataset: String, prepare: IGPTBinary.Result) {
    let (dataset, config) = try setUp()
    let vq = try IGPTBinary.run(["vqvae", "train", "--config", config, "--run", dir + "/vq"])
    guard vq.status == 0 else { throw ClusterError("vqvae train failed: \(vq.stderr)") }
    let prep = try IGPTBinary.run(["prepare", "--tokenizer", "vqvae", "--vqvae", dir + "/vq", "--dataset", dataset, "--out", dir + "/store",
                                   "--val-fraction", "0.25", "--seed", "1"])
    return (dataset, prep)
  }

  /// The whole latent path on real processes: a VQ-VAE, a latent store it encodes (manifest
  /// version 2 naming it), iGPT trained on the codes, samples and show decoded to RGB through
  /// its decoder, the raw-pixel baseline on decoded images, and a store whose VQ-VAE changed refused.
  @Test func latentStoresTrainSampleAndDecode() throws {
    let dir = Fixtures.directory("e2evqvaelatent")
    let (dataset, prep) = try Self.latentStore(in: dir)
    #expect(prep.status == 0 && prep.stdout.contains("2x2 codes of 16"), "\(prep.stderr)")
    let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/store/manifest.json"))) as! [String: Any]
    let tokenizer = manifest["tokenizer"] as? [String: Any], vq = tokenizer?["vqvae"] as? [String: Any]
    #expect(manifest["format_version"] as? Int == 2 && tokenizer?["kind"] as? String == "vqvae" && manifest["resolution"] as? Int == 2)
    #expect(vq?["codes"] as? Int == 16 && vq?["image_resolution"] as? Int == 8 && (vq?["checkpoint"] as? String ?? "").hasPrefix("/"))
    // the same images per split as a palette store with the same seed
    let palette = try IGPTBinary.run(["prepare", "--dataset", dataset, "--resolution", "8", "--palette", "4", "--out", dir + "/pal",
                                      "--val-fraction", "0.25", "--seed", "1"])
    #expect(palette.status == 0)
    let pm = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/pal/manifest.json"))) as! [String: Any]
    #expect((pm["splits"] as! [String: [String: Any]]).mapValues { $0["count"] as! Int } == (manifest["splits"] as! [String: [String: Any]]).mapValues { $0["count"] as! Int })
    let run = dir + "/igpt.yaml"
    try """
      model: {layers: 2, embd: 16, heads: 2, objective: ar}
      data: {store: \(dir)/store}
      train: {steps: 4, batch: 8, microbatch: 8, lr: 0.01, warmup: 1, log_every: 1, val_every: 4, val_images: 8}
      """.write(toFile: run, atomically: true, encoding: .utf8)
    let t = try IGPTBinary.run(["train", "--config", run, "--run", dir + "/igpt"])
    #expect(t.status == 0 && t.stderr.contains("16 VQ-VAE codes"), "\(t.stderr)")
    let step = dir + "/igpt/checkpoints/step-00000004"
    #expect(!FileManager.default.fileExists(atPath: step + "/preprocessor_config.json"))
    let hf = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: step + "/config.json"))) as! [String: Any]
    #expect((hf["igpt_vqvae"] as? [String: String])?["codes"] == "16")
    let eval = try IGPTBinary.run(["eval", "--checkpoint", dir + "/igpt", "--split", "val"])
    let evalJSON = try IGPTBinary.json(eval.stdout)
    #expect(eval.status == 0 && evalJSON["tokens_per_image"] as? Int == 4, "\(eval.stderr)")
    // sample and show: 8x8 RGB images (upscaled to 64 px) decoded from 2x2 codes
    let sample = try IGPTBinary.run(["sample", "--checkpoint", dir + "/igpt", "--count", "4", "--out", dir + "/s.png"])
    #expect(sample.status == 0, "\(sample.stderr)")
    let show = try IGPTBinary.run(["show", dir + "/store", "--split", "val", "--count", "4", "--out", dir + "/show.png"])
    #expect(show.status == 0 && show.stdout.contains("VQ-VAE decoder"), "\(show.stderr)")
    for png in [dir + "/s.png", dir + "/show.png"] {
      let d = try Data(contentsOf: URL(fileURLWithPath: png))
      // PNG header, IHDR colour type 2 (RGB)
      #expect(d.count > 33 && d[1] == 0x50 && d[25] == 2, "\(png) is not an RGB PNG")
    }
    // the raw-pixel baseline on a latent store fits the decoded images, and says so
    let probe = try IGPTBinary.run(["probe", "run", "--checkpoint", dir + "/igpt", "--data", dir + "/store", "--layers", "1", "--raw-pixels",
                                    "--split", "val", "--out", dir + "/probe.json"])
    #expect(probe.status == 0 && probe.stdout.contains("decoded by the store's VQ-VAE"), "\(probe.stderr)")
    let p = try String(contentsOfFile: dir + "/probe.json", encoding: .utf8)
    #expect(p.contains("\"width\":192") || p.contains("\"width\" : 192"), "pixels of 8x8x3 decoded images: \(p.prefix(400))")
    // a store whose VQ-VAE was replaced (other weights) no longer decodes
    let stepDir = (vq?["checkpoint"] as? String) ?? ""
    let weights = stepDir + "/vqvae.safetensors", state = stepDir + "/state.json"
    var stateText = try String(contentsOfFile: state, encoding: .utf8)
    var bytes = try Data(contentsOf: URL(fileURLWithPath: weights))
    bytes[bytes.count - 1] ^= 0x01
    try bytes.write(to: URL(fileURLWithPath: weights))
    let crc = String(format: "%u", Self.crc32(bytes))
    stateText = stateText.replacingOccurrences(of: "\"vqvae.safetensors\" : \((vq?["crc32"] as? Int) ?? 0)", with: "\"vqvae.safetensors\" : \(crc)")
    try stateText.write(toFile: state, atomically: true, encoding: .utf8)
    let refused = try IGPTBinary.run(["show", dir + "/store", "--split", "val", "--count", "2", "--out", dir + "/x.png"])
    #expect(refused.status != 0 && refused.stderr.contains("is not the VQ-VAE this store was encoded with"), "\(refused.stderr)")
  }

  /// zlib's CRC-32, as checkpoints record it.
  static func crc32(_ d: Data) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in d {
      c ^= UInt32(b)
      for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
    }
    return ~c
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
