/// Attention forward and backward through `AttentionTile`: the same math as the sgemm path, in
/// blocks of 8 query rows. With the causal mask, a block's products stop at the first multiple
/// of 16 past its last row, so about half the T x T work is skipped.
extension Attention {
  /// Columns of score rows i0..<i0+8 that must be computed: all of them without the mask,
  /// through the 16-aligned end of the block's last row with it (the same for every row of the
  /// block, since i0 is a multiple of 8).
  @inline(always)
  static func tileWidth(_ i0: Int, causal: Bool, Tp: Int) -> Int {
    causal ? min(Tp, (i0 + 8 + 15) / 16 * 16) : Tp
  }

  static func forwardTiled(
    out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, causal: Bool,
    B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    let scale = 1 / Float(D).squareRoot()
    let Tp = rowStride(T)
    Parallel.forChunks(B * H) { chunk, pairs in
      let s = scratch + chunk * scratchPerThread(T: T, D: D)  // (T, Tp) scores, then probabilities
      let kt = s + 2 * T * Tp  // (D, Tp) K transposed
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let k = q + C, v = q + 2 * C
        let o = out + b * T * C + h * D
        let rowLSE = lse + bh * T
        AttentionTile.transpose(k, lds: 3 * C, rows: T, depth: D, into: kt, ld: Tp)
        var i0 = 0
        while i0 < T {
          let nr = min(AttentionTile.rows, T - i0)
          let width = tileWidth(i0, causal: causal, Tp: Tp)
          let rows = s + i0 * Tp
          // S (nr, width) = scale * Q[i0..<i0+nr] @ K^T
          AttentionTile.rowsTimesTransposed(
            c: rows, ldc: Tp, a: q + i0 * 3 * C, lda: 3 * C, nr: nr, bt: kt, ldbt: Tp, depth: D,
            width: width, alpha: scale)
          for i in i0..<(i0 + nr) {
            rowLSE[i] = Softmax.inPlaceMasked(s + i * Tp, valid: causal ? i + 1 : T, width: width)
          }
          // out[i0..<i0+nr] (nr, D) = P (nr, keys) @ V[keys]; masked entries of P are 0
          AttentionTile.stridedTimes(
            c: o + i0 * C, ldc: C, a: rows, ars: Tp, aks: 1, nr: nr, b: v, ldb: 3 * C,
            depth: causal ? i0 + nr : T, n: D, alpha: 1)
          i0 += AttentionTile.rows
        }
      }
    }
  }

  static func backwardTiled(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    lse: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, causal: Bool,
    B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    let scale = 1 / Float(D).squareRoot()
    let Tp = rowStride(T)
    Parallel.forChunks(B * H) { chunk, pairs in
      let p = scratch + chunk * scratchPerThread(T: T, D: D)  // (T, Tp) probabilities, rebuilt
      let ds = p + T * Tp  // (T, Tp) dP, then dS
      let kt = ds + T * Tp  // (D, Tp) K transposed
      let vt = kt + D * Tp  // (D, Tp) V transposed
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let k = q + C, v = q + 2 * C
        let dq = dqkv + b * T * 3 * C + h * D
        let dk = dq + C, dv = dq + 2 * C
        let dO = dout + b * T * C + h * D
        let rowLSE = lse + bh * T
        AttentionTile.transpose(k, lds: 3 * C, rows: T, depth: D, into: kt, ld: Tp)
        AttentionTile.transpose(v, lds: 3 * C, rows: T, depth: D, into: vt, ld: Tp)
        var i0 = 0
        while i0 < T {
          let nr = min(AttentionTile.rows, T - i0)
          let width = tileWidth(i0, causal: causal, Tp: Tp)
          // P[rows] = exp(scale * Q[rows] @ K^T - lse) ; dP[rows] = dO[rows] @ V^T
          AttentionTile.rowsTimesTransposed(
            c: p + i0 * Tp, ldc: Tp, a: q + i0 * 3 * C, lda: 3 * C, nr: nr, bt: kt, ldbt: Tp,
            depth: D, width: width, alpha: scale)
          AttentionTile.rowsTimesTransposed(
            c: ds + i0 * Tp, ldc: Tp, a: dO + i0 * C, lda: C, nr: nr, bt: vt, ldbt: Tp, depth: D,
            width: width, alpha: 1)
          for i in i0..<(i0 + nr) {
            Softmax.fromLogSumExp(p + i * Tp, lse: rowLSE[i], valid: causal ? i + 1 : T, width: width)
            // dS = P * (dP - sum_j dP * P), in place; 0 where masked (there P = 0)
            Softmax.backwardInPlace(ds + i * Tp, probs: p + i * Tp, width: width)
          }
          // dQ[rows] = scale * dS[rows] @ K[keys]
          AttentionTile.stridedTimes(
            c: dq + i0 * 3 * C, ldc: 3 * C, a: ds + i0 * Tp, ars: Tp, aks: 1, nr: nr, b: k,
            ldb: 3 * C, depth: causal ? i0 + nr : T, n: D, alpha: scale)
          i0 += AttentionTile.rows
        }
        // Keys j0..<j0+8 are attended to by rows r0..<T (r0 = j0 with the mask), whose computed
        // widths all reach past j0 + 8: dV = P^T @ dO and dK = scale * dS^T @ Q over those rows.
        var j0 = 0
        while j0 < T {
          let nr = min(AttentionTile.rows, T - j0)
          let r0 = causal ? j0 : 0
          AttentionTile.stridedTimes(
            c: dv + j0 * 3 * C, ldc: 3 * C, a: p + r0 * Tp + j0, ars: 1, aks: Tp, nr: nr,
            b: dO + r0 * C, ldb: C, depth: T - r0, n: D, alpha: 1)
          AttentionTile.stridedTimes(
            c: dk + j0 * 3 * C, ldc: 3 * C, a: ds + r0 * Tp + j0, ars: 1, aks: Tp, nr: nr,
            b: q + r0 * 3 * C, ldb: 3 * C, depth: T - r0, n: D, alpha: scale)
          j0 += AttentionTile.rows
        }
      }
    }
  }
}
