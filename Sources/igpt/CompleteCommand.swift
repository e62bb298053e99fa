import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTTraining
import IGPTVQVAE

/// `igpt complete`: the top half of real images kept, the bottom half generated.
struct CompleteCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "complete",
    abstract: "Complete the bottom half of real images; writes original | completion pairs to a PNG.",
    discussion: "Example: igpt complete --checkpoint runs/tiny --split test --count 16 --out completions.png")

  @Option(help: "Step directory, run directory or model.safetensors.") var checkpoint: String
  @Option(help: "Split whose first images are completed.") var split = "test"
  @Option(help: "Token store (default: the one the checkpoint was trained on).") var data: String?
  @Option(help: "Images to complete.") var count = 16
  @Option(help: "Softmax temperature.") var temperature: Float = 1.0
  @Option(name: .customLong("top-k"), help: "Sample among the k most likely pixels only.") var topK: Int?
  @Option(help: "Seed.") var seed: UInt64 = 0
  @Option(help: "Output PNG.") var out: String
  @Option(help: "Threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    if count < 1 { throw ValidationError("--count must be at least 1") }
  }

  func run() throws {
    Parallel.threads = max(1, threads)
    BLAS.setThreads(1)
    let resolved = try CheckpointArgument.load(checkpoint)
    let model = resolved.model
    guard model.config.objective == .ar else { throw CleanError("\(resolved.description) is a BERT model: completion needs an AR one") }
    let store = try CheckpointArgument.store(data, resolved)
    let s = try store.split(split)
    let n = min(count, s.count)
    guard n > 0 else { throw CleanError("split '\(split)' is empty") }
    let T = s.sequenceLength, R = store.manifest.resolution
    let originals = try (0..<n).map { try s.tokens($0) }
    let half = (R / 2) * R
    var rngs = (0..<n).map { SeededRandom(seed: seed &* 1_000_003 &+ UInt64($0)) }
    let sampler = Sampler(model: model, batch: n)
    let done = sampler.generate(length: T, prefixes: originals.map { Array($0[0..<half]) }, temperature: temperature,
                                topK: topK, rngs: &rngs)
    let decoder = try VQVAETokenDecoder.forStore(store)
    try ImageGrid.write(groups: (0..<n).map { [decoder.bytes(originals[$0]), decoder.bytes(done[$0])] }, resolution: decoder.resolution,
                        channels: decoder.channels, to: out)
    print("wrote \(out): \(n) \(split) images, original | top \(R / 2) rows kept and the rest sampled")
  }
}
