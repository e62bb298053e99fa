import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt vqvae show`: originals beside their reconstructions, as a PNG grid.
struct VQVAEShowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show",
    abstract: "Write a PNG of images beside their VQ-VAE reconstructions (left original, right decoded from its codes).",
    discussion: "Example: igpt vqvae show --vqvae runs/vqvae --split val --count 32 --out recon.png")

  @Option(help: "A VQ-VAE run directory (its newest checkpoint) or a checkpoint directory.") var vqvae: String
  @Option(help: "Dataset (default: the one it was trained on).") var dataset: String?
  @Option(help: "Split: train, val or test.") var split = "test"
  @Option(help: "Images (the first of the split).") var count = 32
  @Option(help: "Output PNG.") var out: String

  func run() throws {
    let loaded = try VQVAECheckpoint.read(try VQVAECheckpoint.resolve(vqvae))
    BLAS.setThreads(1)
    Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
    let c = loaded.state.config, g = loaded.model.config
    let data = try ImageSplits.load(dataset: dataset ?? c.data.dataset, resolution: g.resolution, crop: c.data.crop,
                                    valFraction: c.data.valFraction, seed: c.train.seed)
    guard let all = data.images[split] else { throw CleanError("the dataset has no split '\(split)'") }
    guard data.channels == g.channels else { throw CleanError("the dataset's images have \(data.channels) channel(s), the VQ-VAE takes \(g.channels)") }
    let n = min(count, data.count(split)), per = data.floatsPerImage
    guard n > 0 else { throw CleanError("split '\(split)' has no images") }
    func bytes(_ p: UnsafePointer<Float>) -> [UInt8] { (0..<per).map { UInt8((min(max(p[$0] + 0.5, 0), 1) * 255).rounded()) } }
    var groups: [[[UInt8]]] = []
    all.withUnsafeBufferPointer { src in
      for i in 0..<n {
        let x = src.baseAddress! + i * per
        let codes = loaded.model.encode(x, batch: 1)
        let y = codes.withUnsafeBufferPointer { loaded.model.decode($0.baseAddress!, batch: 1) }
        groups.append([bytes(x), bytes(y)])
      }
    }
    try ImageGrid.write(groups: groups, resolution: g.resolution, channels: g.channels, columns: 4, to: out)
    print("wrote \(out): \(n) images of split \(split), original | reconstruction (\(g.grid)x\(g.grid) codes each)")
  }
}
