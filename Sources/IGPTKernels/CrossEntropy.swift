/// Softmax cross-entropy over the palette, per position, forward and backward.
///
/// The model turns per-position losses into its objective with per-position weights:
/// AR weights every position 1/(B*T); BERT weights a masked position 1/(masked in its image * B)
/// and the rest 0. Loss = sum(weight * loss), gradient = weight * (p - onehot).
public enum CrossEntropy {
  /// losses (N) = -log softmax(logits)[target]; logits (N, V) are replaced by the probabilities.
  public static func forward(
    losses: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>,
    targets: UnsafePointer<Int32>, N: Int, V: Int
  ) {
    Parallel.forChunks(N) { _, rows in
      for n in rows {
        let row = logits + n * V
        let target = row[Int(targets[n])]
        let logSumExp = Softmax.inPlace(row, V)
        losses[n] = logSumExp - target
      }
    }
  }

  /// dlogits (N, V) = weight * (probs - onehot(target)); overwrites (dlogits may alias probs).
  public static func backward(
    dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
    targets: UnsafePointer<Int32>, weights: UnsafePointer<Float>, N: Int, V: Int
  ) {
    Parallel.forChunks(N) { _, rows in
      for n in rows {
        let w = weights[n]
        let p = probs + n * V, d = dlogits + n * V
        for i in 0..<V { d[i] = w * p[i] }
        d[Int(targets[n])] -= w
      }
    }
  }

  /// sum(weights * losses), summed in Double in position order.
  public static func weightedSum(
    losses: UnsafePointer<Float>, weights: UnsafePointer<Float>, N: Int
  ) -> Double {
    var s = 0.0
    for n in 0..<N { s += Double(weights[n]) * Double(losses[n]) }
    return s
  }
}
