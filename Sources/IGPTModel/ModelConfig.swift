/// The shape of an iGPT transformer and its training objective.
public struct ModelConfig: Codable, Equatable, Sendable {
  /// Autoregressive next-pixel prediction or BERT-style masked-pixel prediction.
  public enum Objective: String, Codable, Sendable, CaseIterable {
    case ar, bert
  }

  /// Number of transformer blocks (L).
  public var layers: Int
  /// Embedding width (C).
  public var embd: Int
  /// Attention heads (H); embd must divide by it.
  public var heads: Int
  /// Positions (n_ctx): the longest sequence the model takes (resolution^2).
  public var seq: Int
  /// Palette size (V): the number of distinct pixel tokens.
  public var vocab: Int
  public var objective: Objective

  public init(layers: Int, embd: Int, heads: Int, seq: Int, vocab: Int, objective: Objective = .ar) {
    self.layers = layers
    self.embd = embd
    self.heads = heads
    self.seq = seq
    self.vocab = vocab
    self.objective = objective
  }

  /// Width of one attention head (D = C / H).
  public var headSize: Int { embd / heads }

  /// Throws a one-line `ModelConfigError` naming the first bad field.
  public func validate() throws {
    if layers < 1 || layers > Self.maxLayers { throw ModelConfigError("layers must be in 1...\(Self.maxLayers) (got \(layers))") }
    if embd < 1 || embd > Self.maxEmbd { throw ModelConfigError("embd must be in 1...\(Self.maxEmbd) (got \(embd))") }
    if heads < 1 { throw ModelConfigError("heads must be at least 1 (got \(heads))") }
    if embd % heads != 0 {
      throw ModelConfigError("embd (\(embd)) must be divisible by heads (\(heads))")
    }
    if seq < 1 || seq > Self.maxSeq { throw ModelConfigError("seq must be in 1...\(Self.maxSeq) (got \(seq))") }
    if vocab < 2 { throw ModelConfigError("vocab must be at least 2 (got \(vocab))") }
    if vocab > 65_536 { throw ModelConfigError("vocab must be at most 65536 (got \(vocab))") }
  }

  /// Bounds that keep every size computed from a shape within Int (the memory a shape needs is
  /// `MemoryBudget`'s to refuse): 4,096 layers, 65,536 wide, 1,048,576 positions.
  public static let maxLayers = 4096, maxEmbd = 65_536, maxSeq = 1 << 20

  /// Throws unless sequences of `length` tokens fit the model's positions.
  public func validate(sequenceLength length: Int) throws {
    try validate()
    if length < 1 { throw ModelConfigError("sequence length must be at least 1 (got \(length))") }
    if length > seq {
      throw ModelConfigError("sequence length \(length) is longer than the model's \(seq) positions")
    }
  }

  /// Named shapes: the paper's models (at 32x32, 512 colours) and small ones that train on a CPU.
  public static let presets: [String: ModelConfig] = [
    "igpt-s": ModelConfig(layers: 24, embd: 512, heads: 8, seq: 1024, vocab: 512),
    "igpt-m": ModelConfig(layers: 36, embd: 1024, heads: 8, seq: 1024, vocab: 512),
    "igpt-l": ModelConfig(layers: 48, embd: 1536, heads: 16, seq: 1024, vocab: 512),
    // CPU presets: 14x14 greyscale (Fashion-MNIST, 16 levels) and 16x16 RGB (512 colours).
    "cpu-tiny": ModelConfig(layers: 4, embd: 128, heads: 4, seq: 196, vocab: 16),
    "cpu-small": ModelConfig(layers: 8, embd: 256, heads: 8, seq: 196, vocab: 16),
    "cpu-rgb": ModelConfig(layers: 8, embd: 256, heads: 8, seq: 256, vocab: 512),
  ]
}

/// A model configuration that cannot be built, with a one-line reason.
public struct ModelConfigError: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
