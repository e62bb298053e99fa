import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTTraining

/// `igpt eval`: the loss of a checkpoint on a split or on a .npy batch of tokens.
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Print a checkpoint's loss (nats and bits per token) on a split or a .npy token batch, as JSON.",
    discussion: """
      --tokens takes an integer .npy array of shape (B, T), so any batch built with numpy can be scored. BERT models are scored with seeded random masks (--seed).

      Examples: igpt eval --checkpoint runs/tiny --split test
                igpt eval --checkpoint runs/tiny/checkpoints/step-00000600 --tokens batch.npy
      """)

  @Option(help: "Step directory, run directory or model.safetensors.") var checkpoint: String
  @Option(help: "Split to score: train, val or test.") var split: String?
  @Option(help: "Token store (default: the one the checkpoint was trained on).") var data: String?
  @Option(help: "Score this integer .npy array (B, T) instead of a split.") var tokens: String?
  @Option(help: "Images per forward pass.") var batch = 32
  @Option(help: "Score at most this many images of the split.") var limit: Int?
  @Option(help: "Seed for BERT masks.") var seed: UInt64 = 0
  @Option(help: "Threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    if (split == nil) == (tokens == nil) { throw ValidationError("give exactly one of --split and --tokens") }
    if batch < 1 { throw ValidationError("--batch must be at least 1") }
    if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
  }

  func run() throws {
    Parallel.threads = max(1, threads)
    BLAS.setThreads(1)
    let resolved = try CheckpointArgument.load(checkpoint)
    let model = resolved.model
    var total = 0.0, images = 0, length = 0
    func score(_ mb: Microbatch) {
      total += Gradient.loss(model: model, microbatch: mb) * Double(mb.count)
      images += mb.count
    }
    if let tokens {
      let (values, B, T) = try Self.readTokens(tokens, model: model.config)
      length = T
      var start = 0
      while start < B {
        let n = min(batch, B - start)
        var mask: [UInt8] = []
        if model.config.objective == .bert {
          var rng = SeededRandom(seed: Microbatch.maskSeed(seed: seed, step: start, micro: 0))
          mask = BERTMask.draw(B: n, T: T, rng: &rng)
        }
        score(Microbatch(count: n, length: T, tokens: Array(values[(start * T)..<((start + n) * T)]), mask: mask))
        start += n
      }
    } else if let split {
      let store = try CheckpointArgument.store(data, resolved)
      let s = try store.split(split)
      let n = min(s.count, limit ?? s.count)
      guard n > 0 else { throw CleanError("split '\(split)' is empty") }
      length = s.sequenceLength
      var start = 0
      while start < n {
        let indices = Array(start..<min(n, start + batch))
        score(try Microbatch.load(indices, from: s, objective: model.config.objective,
                                  maskSeed: Microbatch.maskSeed(seed: seed, step: start, micro: 0)))
        start += batch
      }
    }
    let loss = total / Double(images)
    let result: [String: Any] = [
      "checkpoint": resolved.description, "loss_nats": loss, "bits_per_token": loss / Foundation.log(2.0),
      "images": images, "tokens_per_image": length, "objective": model.config.objective.rawValue,
      "source": tokens ?? split ?? "",
    ]
    let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
  }

  /// An integer .npy (B, T) of tokens in 0..<vocab with T within the model's positions.
  static func readTokens(_ path: String, model: ModelConfig) throws -> ([Int32], Int, Int) {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw CleanError("\(path): cannot be read (missing or not a file)")
    }
    let a: Npy.Parsed
    let values: [Int64]
    do {
      a = try Npy.decode(data)
      values = try Npy.integers(a)
    } catch { throw CleanError("\(path): \(error)") }
    guard a.shape.count == 2, a.shape[0] >= 1, a.shape[1] >= 1 else {
      throw CleanError("\(path): shape \(a.shape) is not (B, T)")
    }
    guard a.shape[1] <= model.seq else {
      throw CleanError("\(path): \(a.shape[1]) tokens per row exceed the model's \(model.seq) positions")
    }
    if let bad = values.first(where: { $0 < 0 || $0 >= Int64(model.vocab) }) {
      throw CleanError("\(path): token \(bad) is outside the palette 0..<\(model.vocab)")
    }
    return (values.map { Int32($0) }, a.shape[0], a.shape[1])
  }
}
