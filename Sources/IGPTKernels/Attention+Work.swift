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
    let D = Double(C / H), pairs = Double(B * H)
    var f = 0.0, bw = 0.0
    if usesTiles(D: C / H) {
      let Tp = rowStride(T)
      var q0 = 0
      while q0 < T {  // forward: per query block, its spans of keys
        let qn = min(block, T - q0)
        var j0 = 0
        while j0 < (causal ? q0 + qn : T) {
          let kw = min(forwardKeys, Tp - j0)
          var r0 = 0
          while r0 < qn {
            let nr = min(AttentionTile.rows, qn - r0)
            let width = causal ? min(kw, (q0 + r0 + nr - j0 + 15) / 16 * 16) : kw
            f += 2 * Double(nr * width) * D  // S and P V
            r0 += AttentionTile.rows
          }
          j0 += forwardKeys
        }
        q0 += block
      }
      var j0 = 0
      while j0 < T {  // backward: per key block, its query blocks
        let kw = min(block, Tp - j0), keys = min(block, T - j0)
        var q0 = causal ? j0 : 0
        while q0 < T {
          let qn = min(block, T - q0), diagonal = causal && q0 == j0
          var r0 = 0
          while r0 < qn {
            let nr = min(AttentionTile.rows, qn - r0)
            bw += 3 * Double(nr * tileWidth(r0: r0, nr: nr, kw: kw, diagonal: diagonal)) * D  // S, dP, dQ
            r0 += AttentionTile.rows
          }
          var jj = 0
          while jj < keys {
            let nk = min(AttentionTile.rows, keys - jj)
            bw += 2 * Double(nk * (qn - (diagonal ? jj : 0))) * D  // dV and dK
            jj += AttentionTile.rows
          }
          q0 += block
        }
        j0 += block
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
