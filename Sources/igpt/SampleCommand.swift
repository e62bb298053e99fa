import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTTraining
import IGPTVQVAE

/// `igpt sample`: new images from an AR checkpoint, one forward step per pixel (KV cache).
struct SampleCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sample",
    abstract: "Generate images from an AR checkpoint into a PNG grid.",
    discussion: """
      Uses a key/value cache: each new pixel costs one forward step over one position. --no-kv-cache re-runs the whole prefix for every pixel instead (how OpenAI's sampling script works), to compare speed.

      Example: igpt sample --checkpoint runs/tiny --count 32 --temperature 1.0 --seed 1 --out samples.png
      """)

  @Option(help: "Step directory, run directory or model.safetensors.") var checkpoint: String
  @Option(help: "Images to generate.") var count = 16
  @Option(help: "Softmax temperature (0 = most likely pixel).") var temperature: Float = 1.0
  @Option(name: .customLong("top-k"), help: "Sample among the k most likely pixels only.") var topK: Int?
  @Option(help: "Seed.") var seed: UInt64 = 0
  @Option(help: "Output PNG.") var out: String
  @Option(help: "Token store whose palette decodes the pixels (default: the checkpoint's).") var data: String?
  @Flag(name: .customLong("no-kv-cache"), help: "Recompute the whole prefix for every pixel (slow; for comparison).")
  var noKVCache = false
  @Option(help: "Threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    if count < 1 { throw ValidationError("--count must be at least 1") }
    if temperature < 0 { throw ValidationError("--temperature must be at least 0") }
    if let k = topK, k < 1 { throw ValidationError("--top-k must be at least 1") }
  }

  @OptionGroup var memory: MemoryOption

  func run() throws {
    try memory.apply()
    Parallel.threads = max(1, threads)
    BLAS.setThreads(1)
    let resolved = try CheckpointArgument.load(checkpoint)
    let model = resolved.model
    guard model.config.objective == .ar else { throw CleanError("\(resolved.description) is a BERT model: sampling needs an AR one") }
    let decoder = try SamplingSupport.decoder(data, resolved)
    let T = model.config.seq
    let R = Int(Double(T).squareRoot().rounded())
    guard R * R == T else { throw CleanError("the model's \(T) positions are not a square image") }
    try MemoryBudget.check(noKVCache ? MemoryBudget.activations(model.config, batch: count, seq: T, threads: threads, recompute: true)
                                     : MemoryBudget.sampler(model.config, batch: count), for: "sampling \(count) images")
    var rngs = (0..<count).map { SeededRandom(seed: seed &* 1_000_003 &+ UInt64($0)) }
    let start = Date()
    let tokens: [[Int32]]
    if noKVCache {
      tokens = SamplingSupport.generateWithoutCache(model: model, count: count, temperature: temperature, topK: topK, rngs: &rngs)
    } else {
      let sampler = Sampler(model: model, batch: count)
      tokens = sampler.generate(length: T, prefixes: Array(repeating: [], count: count), temperature: temperature,
                                topK: topK, rngs: &rngs)
    }
    let seconds = Date().timeIntervalSince(start)
    let images = tokens.map { [decoder.bytes($0)] }
    try ImageGrid.write(groups: images, resolution: decoder.resolution, channels: decoder.channels, to: out)
    print(String(format: "wrote %@: %d samples in %.2fs (%.3fs per image, %@)", out, count, seconds,
                 seconds / Double(count), noKVCache ? "no KV cache" : "KV cache"))
  }
}

/// Shared by sample and complete.
enum SamplingSupport {
  /// What turns sampled tokens into pixels: the given store's palette or VQ-VAE, else the
  /// checkpoint's own (its VQ-VAE, its palette, a Hugging Face directory's preprocessor_config.json).
  static func decoder(_ data: String?, _ resolved: CheckpointArgument.Resolved) throws -> TokenDecoder {
    let side = Int(Double(resolved.model.config.seq).squareRoot().rounded())
    if let data { return try VQVAETokenDecoder.forStore(try TokenStore(path: data)) }
    if let t = resolved.state?.tokenizer ?? resolved.vqvae, t.kind == .vqvae { return try VQVAETokenDecoder.forTokenizer(t, palette: nil, resolution: side) }
    if let p = resolved.state?.palette, !p.isEmpty {
      return .palette(try Palette(colors: p.flatMap { $0 }, channels: p.first?.count ?? 1), resolution: side)
    }
    if let p = resolved.palette { return .palette(p, resolution: side) }
    throw CleanError("give --data: \(resolved.description) has no palette or VQ-VAE of its own")
  }

  /// The way OpenAI's sampler works: the whole prefix through the full forward pass per pixel.
  static func generateWithoutCache(model: IGPT, count: Int, temperature: Float, topK: Int?,
                                   rngs: inout [SeededRandom]) -> [[Int32]] {
    let T = model.config.seq, V = model.config.vocab
    var seqs = [Int32](repeating: 0, count: count * T)
    for t in 0..<T {
      var prefix = [Int32](repeating: 0, count: max(1, count * t))
      for b in 0..<count { for j in 0..<t { prefix[b * t + j] = seqs[b * T + j] } }
      let logits = prefix.withUnsafeBufferPointer { model.nextLogits(prefix: $0.baseAddress!, batch: count, length: t) }
      for b in 0..<count {
        seqs[b * T + t] = Sampler.draw(logits[(b * V)..<((b + 1) * V)], temperature: temperature, topK: topK, rng: &rngs[b])
      }
    }
    return (0..<count).map { Array(seqs[($0 * T)..<(($0 + 1) * T)]) }
  }
}
