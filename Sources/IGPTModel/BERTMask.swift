import IGPTKernels

/// Random BERT masks: each position masked independently with probability p (0.15 in the paper).
public enum BERTMask {
  /// A (B, T) mask, 1 = masked, drawn from rng.
  public static func draw(B: Int, T: Int, probability p: Double = 0.15, rng: inout SeededRandom) -> [UInt8] {
    (0..<(B * T)).map { _ in rng.uniform() < p ? 1 : 0 }
  }
}
