import ArgumentParser
import Foundation
import IGPTKernels
import IGPTModel

/// `igpt oracle`: writes a model, a token batch and igpt's loss and gradient norms, for comparison
/// with an independent implementation (../shared/tools/torch_igpt.py loss).
struct OracleCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "oracle",
    abstract: "Write a test case (model.safetensors, tokens.npy, mask.npy) and igpt's loss and gradient norms.",
    discussion: """
      The head and norm gains are perturbed away from their initial values (zero head, unit gains) so that every tensor gets a non-zero gradient. Compare with:

        python torch_igpt.py loss --weights DIR/model.safetensors --tokens DIR/tokens.npy [--bert-mask DIR/mask.npy]
      """)

  @Option(help: "Transformer blocks.") var layers = 2
  @Option(help: "Embedding width.") var embd = 64
  @Option(help: "Attention heads.") var heads = 4
  @Option(help: "Sequence length.") var seq = 49
  @Option(help: "Sequences in the batch.") var batch = 3
  @Option(help: "Palette size.") var vocab = 16
  @Option(help: "Objective: ar or bert.") var objective: ModelConfig.Objective = .ar
  @Option(help: "Seed.") var seed: UInt64 = 3
  @Option(help: "Output directory.") var out: String

  func run() throws {
    Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(1)
    let config = ModelConfig(layers: layers, embd: embd, heads: heads, seq: seq, vocab: vocab,
                             objective: objective)
    let model = try IGPT(config: config)
    model.initialize(seed: seed)
    var rng = SeededRandom(seed: seed &+ 100)
    model.perturbForTesting(rng: &rng)
    let tokens = (0..<(batch * seq)).map { _ in Int32(rng.next() % UInt64(vocab)) }
    let mask = BERTMask.draw(B: batch, T: seq, probability: 0.3, rng: &rng)
    model.zeroGradients()
    let loss = tokens.withUnsafeBufferPointer { tk in
      mask.withUnsafeBufferPointer { mk in
        model.forwardBackward(tokens: tk.baseAddress!, mask: mk.baseAddress!, batch: batch)
      }
    }
    let dir = URL(fileURLWithPath: out)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try model.huggingFaceSafetensors().write(to: dir.appendingPathComponent("model.safetensors"))
    try Npy.encode(int32: tokens, shape: [batch, seq]).write(to: dir.appendingPathComponent("tokens.npy"))
    if objective == .bert {
      try Npy.encode(uint8: mask, shape: [batch, seq]).write(to: dir.appendingPathComponent("mask.npy"))
    }
    let result: [String: Any] = ["loss": loss, "grad_norms": model.gradientNorms()]
    let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted])
    try data.write(to: dir.appendingPathComponent("igpt.json"))
    print(String(decoding: data, as: UTF8.self))
  }
}
