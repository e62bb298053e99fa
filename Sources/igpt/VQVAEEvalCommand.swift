import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt vqvae eval`: reconstruction quality on a split, one JSON line.
struct VQVAEEvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Reconstruction quality of a trained VQ-VAE on a dataset's split, as one JSON line.",
    discussion: """
      Prints mse (pixels in [0, 1], reconstructions clamped to it), psnr_db, perplexity and codes_used over every latent of the split, with the checkpoint, split and image count.

      Example: igpt vqvae eval --vqvae runs/vqvae --dataset ../shared/data/cifar10-sample --split val
      """)

  @Option(help: "A VQ-VAE run directory (its newest checkpoint) or a checkpoint directory.") var vqvae: String
  @Option(help: "Dataset (default: the one it was trained on).") var dataset: String?
  @Option(help: "Split: train, val or test.") var split = "test"
  @Option(help: "Only the first N images of the split.") var images: Int?
  @Option(help: "Threads (default: all cores).") var threads: Int?

  func run() throws {
    let path = try VQVAECheckpoint.resolve(vqvae)
    let loaded = try VQVAECheckpoint.read(path)
    BLAS.setThreads(1)
    Parallel.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
    let c = loaded.state.config
    let data = try ImageSplits.load(dataset: dataset ?? c.data.dataset, resolution: loaded.model.config.resolution, crop: c.data.crop,
                                    valFraction: c.data.valFraction, seed: c.train.seed)
    guard data.channels == loaded.model.config.channels else {
      throw CleanError("the dataset's images have \(data.channels) channel(s), the VQ-VAE takes \(loaded.model.config.channels)")
    }
    let e = try VQVAEEvaluation.measure(loaded.model, data, split: split, count: images, batch: c.train.batch)
    var out = try JSONSerialization.jsonObject(with: JSONEncoder().encode(e)) as! [String: Any]
    out["checkpoint"] = path
    out["step"] = loaded.state.step
    print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
  }
}
