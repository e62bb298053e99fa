import IGPTData
import IGPTKernels
import IGPTModel

/// One unit of gradient work: the tokens of a few images and, for BERT, their masks.
public struct Microbatch: Sendable, Equatable {
  public var count: Int
  public var length: Int
  /// count * length tokens.
  public var tokens: [Int32]
  /// count * length, 1 = masked (BERT), or empty (AR).
  public var mask: [UInt8]

  public init(count: Int, length: Int, tokens: [Int32], mask: [UInt8]) {
    self.count = count
    self.length = length
    self.tokens = tokens
    self.mask = mask
  }

  /// Reads the images from a split; BERT masks come from a generator seeded by maskSeed, so the
  /// same microbatch always gets the same masks wherever it is built.
  public static func load(
    _ indices: [Int], from split: TokenSplit, objective: ModelConfig.Objective, maskSeed: UInt64
  ) throws -> Microbatch {
    let T = split.sequenceLength
    var tokens = [Int32](repeating: 0, count: indices.count * T)
    try tokens.withUnsafeMutableBufferPointer { buf in
      for (i, idx) in indices.enumerated() { try split.copyTokens(idx, into: buf.baseAddress! + i * T) }
    }
    var mask: [UInt8] = []
    if objective == .bert {
      var rng = SeededRandom(seed: maskSeed)
      mask = BERTMask.draw(B: indices.count, T: T, rng: &rng)
    }
    return Microbatch(count: indices.count, length: T, tokens: tokens, mask: mask)
  }

  /// The mask seed of microbatch `micro` of step `step`.
  public static func maskSeed(seed: UInt64, step: Int, micro: Int) -> UInt64 {
    seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(step) &* 1_000_003 &+ UInt64(micro) &+ 0xBE27
  }
}

/// The gradient function: the same code in `igpt train` and in a cluster worker.
public enum Gradient {
  /// Zeroes model.grads, then fills them with scale * d(loss)/d(params) of the microbatch and
  /// returns its loss. Each microbatch's gradient starts from zero, so summing microbatches in
  /// order gives the same bytes whether they were computed here or on other hosts.
  @discardableResult
  public static func compute(model: IGPT, microbatch mb: Microbatch, scale: Float) -> Double {
    model.zeroGradients()
    return mb.tokens.withUnsafeBufferPointer { tk in
      mb.mask.withUnsafeBufferPointer { mk in
        model.forwardBackward(tokens: tk.baseAddress!, mask: mb.mask.isEmpty ? nil : mk.baseAddress,
                              batch: mb.count, length: mb.length, lossScale: scale)
      }
    }
  }

  /// The loss of a microbatch (forward only).
  public static func loss(model: IGPT, microbatch mb: Microbatch) -> Double {
    mb.tokens.withUnsafeBufferPointer { tk in
      mb.mask.withUnsafeBufferPointer { mk in
        model.loss(tokens: tk.baseAddress!, mask: mb.mask.isEmpty ? nil : mk.baseAddress,
                   batch: mb.count, length: mb.length)
      }
    }
  }
}
