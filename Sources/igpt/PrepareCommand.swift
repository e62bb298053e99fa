import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTVQVAE

/// `igpt prepare`: turns a dataset into a token store.
struct PrepareCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prepare",
    abstract: "Turn images into a token store: resize, learn a k-means palette, quantise, shard.",
    discussion: """
      --dataset takes `fashion-mnist` (Debian's dataset-fashion-mnist) or a directory: IDX files (MNIST layout, raw or .gz), CIFAR-10/100 binary batches, or a folder of PNG/JPEG/BMP images (one subfolder per class, or flat; train/, val/ and test/ subfolders give those splits).

      The palette is learnt on the train split (k-means++ then Lloyd iterations) unless --palette-from gives a .npy of shape (k, 3) or (k, 1) in [-1, 1] (OpenAI's kmeans_centers.npy layout), a Hugging Face preprocessor_config.json (its clusters), or a Hugging Face ImageGPT model directory. A seeded --val-fraction of train becomes the val split. The store is written to a hidden temporary directory and renamed to --out only when complete.

      --tokenizer vqvae --vqvae RUN makes a latent store instead: each image (at the VQ-VAE's resolution) becomes its grid of codes in raster order (vocabulary = the codebook, sequence = the grid), the splits the same images as with a palette; the manifest names the VQ-VAE's checkpoint and checksum, so show, sample and complete decode back to RGB.

      Examples: igpt prepare --dataset fashion-mnist --resolution 14 --palette 16 --out data/fmnist14
                igpt prepare --tokenizer vqvae --vqvae runs/vqvae-cifar32 --dataset ../shared/data/cifar10-sample --out data/cifar-latent
      """)

  @Option(help: "fashion-mnist, or a dataset directory.") var dataset: String
  @Option(help: "Force the format: idx, cifar or folder (default: recognised from the files).")
  var format: String?
  @Option(help: "palette (k-means colours, one token per pixel) or vqvae (a trained VQ-VAE's codes).") var tokenizer = "palette"
  @Option(help: "With --tokenizer vqvae: a VQ-VAE run directory (its newest checkpoint) or checkpoint directory.") var vqvae: String?
  @Option(help: "Input resolution R: images become R x R, R^2 tokens (palette tokenizer; a VQ-VAE has its own).") var resolution: Int?
  @Option(help: "Palette colours (default 512 for RGB, 16 for grey).") var palette: Int?
  @Option(name: .customLong("palette-from"), help: "Use this palette instead of k-means: a .npy, a preprocessor_config.json or a HF model directory.")
  var paletteFrom: String?
  @Option(help: "Output store directory (must not exist).") var out: String
  @Option(name: .customLong("val-fraction"), help: "Share of train held out as val.") var valFraction = 0.1
  @Option(help: "Seed for the palette sample, k-means and the val split.") var seed: UInt64 = 0
  @Flag(help: "Centre-crop non-square images to a square before resizing.") var crop = false
  @Option(name: .customLong("palette-sample"), help: "Pixels sampled for k-means.") var paletteSample = 262_144
  @Option(name: .customLong("shard-size"), help: "Images per shard file.") var shardSize = 10_000
  @Option(help: "Threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
  @OptionGroup var memory: MemoryOption

  func run() throws {
    try memory.apply()
    Parallel.threads = max(1, threads)
    BLAS.setThreads(1)
    switch tokenizer {
    case "palette": break
    case "vqvae": return try runLatent()
    default: throw ValidationError("--tokenizer must be palette or vqvae (got \(tokenizer))")
    }
    if vqvae != nil { throw ValidationError("--vqvae goes with --tokenizer vqvae") }
    guard let resolution else { throw ValidationError("--resolution is needed with the palette tokenizer") }
    var o = Preparation.Options(dataset: dataset, resolution: resolution, out: out)
    if let format {
      guard let f = DatasetLoader.Format(rawValue: format) else {
        throw ValidationError("--format must be idx, cifar or folder (got \(format))")
      }
      o.format = f
    }
    o.paletteSize = palette
    o.paletteFrom = paletteFrom
    o.valFraction = valFraction
    o.seed = seed
    o.crop = crop
    o.paletteSample = paletteSample
    o.shardSize = shardSize
    let progress = ProgressLine()
    let start = Date()
    let summary: Preparation.Summary
    do {
      summary = try Preparation.run(o) { progress.update($0, $1, $2) }
    } catch {
      progress.abandon()
      throw error
    }
    progress.finish()
    let counts = summary.counts.keys.sorted().map { "\($0) \(summary.counts[$0]!)" }.joined(separator: ", ")
    let phases = ["read", "resize", "palette", "quantise", "write"].compactMap { p in
      summary.seconds[p].map { String(format: "%@ %.1fs", p, $0) }
    }.joined(separator: ", ")
    print("prepared \(summary.out): \(counts) images; \(resolution)x\(resolution), \(summary.palette.count) colours, \(summary.palette.channels) channel(s)")
    print(String(format: "took %.1fs (%@)", Date().timeIntervalSince(start), phases))
  }

  /// --tokenizer vqvae: a latent store.
  func runLatent() throws {
    guard let vqvae else { throw ValidationError("--tokenizer vqvae needs --vqvae RUN (a trained VQ-VAE)") }
    for (flag, given) in [("--resolution", resolution != nil), ("--palette", palette != nil), ("--palette-from", paletteFrom != nil), ("--format", format != nil)] where given {
      throw ValidationError("\(flag) does not apply to --tokenizer vqvae (the VQ-VAE sets the resolution and the vocabulary)")
    }
    var o = LatentPreparation.Options(dataset: dataset, vqvae: vqvae, out: out)
    o.valFraction = valFraction
    o.seed = seed
    o.crop = crop
    o.shardSize = shardSize
    let progress = ProgressLine()
    let start = Date()
    let summary: LatentPreparation.Summary
    do {
      summary = try LatentPreparation.run(o) { progress.update($0, $1, $2) }
    } catch {
      progress.abandon()
      throw error
    }
    progress.finish()
    let counts = summary.counts.keys.sorted().map { "\($0) \(summary.counts[$0]!)" }.joined(separator: ", ")
    let phases = ["read", "encode", "write"].compactMap { p in summary.seconds[p].map { String(format: "%@ %.1fs", p, $0) } }.joined(separator: ", ")
    let images = summary.counts.values.reduce(0, +)
    print("prepared \(summary.out): \(counts) images; \(summary.grid)x\(summary.grid) codes of \(summary.codes) each")
    print(String(format: "took %.1fs (%@); %.0f images/s encoded", Date().timeIntervalSince(start), phases,
                 Double(images) / max(summary.seconds["encode"] ?? 1, 1e-9)))
  }
}
