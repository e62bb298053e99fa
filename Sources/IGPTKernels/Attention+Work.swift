/// The multiply-adds attention's products really do, block by block as the kernels cut them
/// (`igpt bench --profile` turns them into GFLOP/s). The loops mirror `forwardTiled` /
/// `backwardTiled` and the sgemm path in Attention.swift: change one, change the other.
extension Attention {
  public struct Work: Equatable, Sendable {
    /// Multiply-adds of one forward call (all batch rows and heads).
    public var forward: Double
    /// Multiply-adds of one backward call (the scores rebuilt, dP, dQ, dK, dV).
    public var backward: Double
  }

  public static func work(B: Int, T: Int, C: Int, H: Int, causal: Bool) -> Work {
    let D = Double(C / H), pairs = Double(B * H)
    var f = 0.0, bw = 0.0
    if usesTiles(D: C / H) {
      let Tp = rowStride(T)
      var i0 = 0
      while i0 < T {
        let nr = Double(min(AttentionTile.rows, T - i0))
        let width = Double(tileWidth(i0, causal: causal, Tp: Tp)), keys = Double(causal ? min(T, i0 + AttentionTile.rows) : T)
        f += nr * (width + keys) * D  // S = Q K^T over the tile's width; P V over its keys
        bw += nr * (2 * width + keys) * D  // P and dP rebuilt; dQ = dS K
        let below = Double(T - (causal ? i0 : 0))
        bw += 2 * nr * below * D  // dV = P^T dO and dK = dS^T Q for keys i0..<i0+nr
        i0 += AttentionTile.rows
      }
    } else {
      let nb = blockCount(T: T, causal: causal)
      for block in 0..<nb {
        let rows = Parallel.chunkRange(block, of: nb, count: T)
        let cols = Double(causal ? rows.upperBound : T), n = Double(rows.count)
        f += 2 * n * cols * D
        bw += 3 * n * cols * D
        bw += 2 * n * Double(T - (causal ? rows.lowerBound : 0)) * D
      }
    }
    return Work(forward: pairs * f, backward: pairs * bw)
  }
}
