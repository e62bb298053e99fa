import Foundation
import IGPTCluster
import IGPTData
import IGPTTestSupport
@testable import IGPTTraining
import Testing

/// A latent (VQ-VAE) token store through the cluster and the HF export: what runs on a palette
/// store runs on codes, and whatever draws images draws them through the store's VQ-VAE.
@Suite(.serialized) struct LatentClusterTests {
  /// Coordinator + worker on a latent store train `igpt train`'s bytes; a scheduled probe with
  /// the pixel baseline fits the images decoded from the codes; TensorBoard's samples are
  /// 8x8 RGB images decoded from 2x2 codes; `igpt export` names the VQ-VAE and writes no
  /// preprocessor_config.json.
  @Test func aLatentStoreTrainsOnTheClusterProbesAndExports() throws {
    let dir = Fixtures.directory("latent-cluster")
    let (_, prep) = try VQVAECommandTests.latentStore(in: dir)
    #expect(prep.status == 0, "\(prep.stderr)")
    let base = """
      model: {layers: 2, embd: 16, heads: 2, objective: ar}
      data: {store: \(dir)/store}
      train: {steps: 8, batch: 8, microbatch: 2, lr: 0.01, warmup: 1, seed: 3, threads: 1, log_every: 1, val_every: 4, val_images: 8}
      checkpoint: {every: 4, keep: 4}
      cluster: {heartbeat_interval: 0.2, heartbeat_misses: 5, task_timeout: 10}
      """
    try base.write(toFile: dir + "/train.yaml", atomically: true, encoding: .utf8)
    try (base + "\nprobes: {every: 4, layers: \"2\", train_images: 16, eval_images: 10, raw_pixels: true}\n")
      .write(toFile: dir + "/cluster.yaml", atomically: true, encoding: .utf8)
    let t = try IGPTBinary.run(["train", "--config", dir + "/train.yaml", "--run", dir + "/reference"])
    #expect(t.status == 0, "\(t.stderr)")

    let port = 5971
    let c = try ClusterProcess("c", ["coordinator", "--config", dir + "/cluster.yaml", "--run", dir + "/cluster", "--bind", "tcp://127.0.0.1:\(port)"],
                               logDir: dir)
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"], logDir: dir)
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(w.wait(timeout: 10) == 0, "\(w.log)")
    for file in ["model.safetensors", "optimizer.safetensors"] {
      let a = FileManager.default.contents(atPath: dir + "/reference/checkpoints/step-00000008/" + file)
      let b = FileManager.default.contents(atPath: dir + "/cluster/checkpoints/step-00000008/" + file)
      #expect(a != nil && a == b, "\(file) differs from igpt train's: \(c.log)")
    }

    // probes at steps 4 and 8, each with a layer and the pixels of the decoded 8x8x3 images
    let probes = try String(contentsOfFile: dir + "/cluster/probes.jsonl", encoding: .utf8).split(separator: "\n")
    #expect(probes.count == 2, "\(c.log)")
    for line in probes {
      let job = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      let results = job["results"] as? [[String: Any]] ?? []
      let pixels = results.first { $0["features"] as? String == "pixels" }
      #expect(results.map { $0["features"] as? String } == ["2", "pixels"], "\(line)")
      #expect(pixels?["width"] as? Int == 192 && (pixels?["input"] as? String ?? "").contains("decoded by the store's VQ-VAE"), "\(line)")
    }

    // TensorBoard samples at each validation: grids of 8x8 RGB images, not of 2x2 code planes
    let events = try TFRecord.records(try Data(contentsOf: URL(fileURLWithPath: dir + "/cluster/tensorboard/" + TensorBoardLog.fileName)))
      .map { try Tensorboard_Event(serializedBytes: $0.data) }
    let samples = events.filter { $0.summary.value.first?.tag == "samples" }
    let expected = try ImageGrid.png(groups: Array(repeating: [[UInt8](repeating: 0, count: 8 * 8 * 3)], count: 8), resolution: 8, channels: 3)
    #expect(samples.map(\.step) == [4, 8])
    for s in samples {
      let image = s.summary.value[0].image
      #expect(image.colorspace == 3 && Int(image.width) == expected.width && Int(image.height) == expected.height,
              "\(image.width)x\(image.height)x\(image.colorspace), expected \(expected.width)x\(expected.height)x3")
    }

    // the HF export of a latent model: its weights, config.json naming the VQ-VAE, no processor
    let out = dir + "/hf"
    let e = try IGPTBinary.run(["export", "--checkpoint", dir + "/cluster", "--out", out])
    #expect(e.status == 0, "\(e.stderr)")
    func loss(_ checkpoint: String) throws -> Double? {
      let r = try IGPTBinary.run(["eval", "--checkpoint", checkpoint, "--data", dir + "/store", "--split", "val"])
      return (try? IGPTBinary.json(r.stdout))?["loss_nats"] as? Double
    }
    let trained = try loss(dir + "/cluster")
    let exported = try loss(out)
    #expect(trained != nil && exported == trained, "the export is the model it was written from")
    // sampling from the HF directory decodes through the VQ-VAE its config.json names
    let sample = try IGPTBinary.run(["sample", "--checkpoint", out, "--count", "2", "--out", dir + "/hf-samples.png"])
    let png = FileManager.default.contents(atPath: dir + "/hf-samples.png") ?? Data()
    #expect(sample.status == 0 && png.count > 33 && png[25] == 2, "an RGB PNG: \(sample.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out + "/preprocessor_config.json"))
    let hf = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
    let vq = hf["igpt_vqvae"] as? [String: String]
    #expect(vq?["codes"] == "16" && vq?["grid"] == "2" && (vq?["checkpoint"] ?? "").hasPrefix(dir + "/vq"), "\(hf)")
    #expect(hf["vocab_size"] as? Int == 17, "16 codes and the start-of-image token: \(hf)")
  }
}
