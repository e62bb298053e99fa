/// The multiply-adds attention's products really do, block by block as the kernels cut them
/// (`igpt bench --profile` turns them into GFLOP/s). The loops mirror `forwardBlocked` /
/// `backwardBlocked` and the sgemm path in Attention.swift: change one, change the other.
extension Attention {
  public struct Work: Equatable, Sendable {
    /// Multiply-adds of one forward call (all batch rows and heads).
    public var forward: Double
    /// Multiply-adds of one backward call (the scores rebuilt, dP, dQ, dK, dV).
    public var backward: Double
  }

  public static func work(B: Int, T: Int, C: Int, H: Int, causal: Bool) -> Work {
    let D = C / H, pairs = Double(B * H)
    let (f, bw) = usesTiles(D: D) ? blockedWork(T: T, D: D, causal: causal) : sgemmWork(T: T, D: D, causal: causal)
    return Work(forward: pairs * f, backward: pairs * bw)
  }

  /// One head's multiply-adds in the blocked kernels (forward, backward).
  static func blockedWork(T: Int, D: Int, causal: Bool) -> (Double, Double) {
    let Tp = rowStride(T)
    var f = 0, bw = 0
    var q0 = 0
    while q0 < T {  // forward: per query block, its spans of keys
      let qn = min(block, T - q0)
      var j0 = 0
      while j0 < (causal ? q0 + qn : T) {
        let kw = min(forwardKeys, Tp - j0)
        for r0 in stride(from: 0, to: qn, by: AttentionTile.rows) {
          let nr = min(AttentionTile.rows, qn - r0)
          f += 2 * nr * tileWidth(rowsEnd: q0 + r0 + nr - j0, kw: kw, causal: causal) * D  // S and P V
        }
        j0 += forwardKeys
      }
      q0 += block
    }
    for j0 in stride(from: 0, to: T, by: block) {  // backward: per key block, its query blocks
      let kw = min(block, Tp - j0), keys = min(block, T - j0)
      for q0 in stride(from: causal ? j0 : 0, to: T, by: block) {
        let qn = min(block, T - q0), diagonal = causal && q0 == j0
        for r0 in stride(from: 0, to: qn, by: AttentionTile.rows) {
          let nr = min(AttentionTile.rows, qn - r0)
          bw += 3 * nr * tileWidth(rowsEnd: q0 + r0 + nr - j0, kw: kw, causal: causal) * D  // S, dP, dQ
        }
        for jj in stride(from: 0, to: keys, by: AttentionTile.rows) {
          bw += 2 * min(AttentionTile.rows, keys - jj) * (qn - (diagonal ? jj : 0)) * D  // dV and dK
        }
      }
    }
    return (Double(f), Double(bw))
  }

  /// One head's multiply-adds in the sgemm path (forward, backward).
  static func sgemmWork(T: Int, D: Int, causal: Bool) -> (Double, Double) {
    let nb = blockCount(T: T, causal: causal)
    var f = 0.0, bw = 0.0
    for block in 0..<nb {
      let rows = Parallel.chunkRange(block, of: nb, count: T)
      let cols = Double(causal ? rows.upperBound : T), n = Double(rows.count)
      f += 2 * n * cols * Double(D)
      bw += 3 * n * cols * Double(D)
      bw += 2 * n * Double(T - (causal ? rows.lowerBound : 0)) * Double(D)
    }
    return (f, bw)
  }
}
