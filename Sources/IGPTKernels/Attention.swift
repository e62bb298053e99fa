/// Multi-head scaled dot-product attention, causal (AR) or bidirectional (BERT), forward and backward.
///
/// When the head width is a multiple of 16, as in every preset, attention runs in blocks of 64
/// queries by 64 keys through `AttentionTile` (Attention+Blocks.swift): no T x T matrix is
/// stored, only each row's log-sum-exp, from which backward rebuilds the probabilities block by
/// block. Other widths go through small sgemms (below) over a per-thread T x T scratch, in row
/// blocks that stop at the block's last allowed column under the causal mask. Threads split the
/// (batch, head) pairs; each pair's sums run in one fixed order, so the thread count never
/// changes the bytes.
public enum Attention {
  /// Row stride of the per-thread score matrices: T rounded up to 16 floats, so every row is
  /// processed in whole 16-lane vectors with no scalar tail.
  @inline(always)
  public static func rowStride(_ T: Int) -> Int { (T + 15) / 16 * 16 }

  /// Floats of scratch `forward` and `backward` need per call: per thread, the blocked kernels'
  /// packed operands (about 7 T x D, `HeadScratch`), or for the sgemm path two T x rowStride(T)
  /// matrices (probabilities and their gradient).
  public static func scratchCount(T: Int, D: Int, threads: Int) -> Int {
    threads * scratchPerThread(T: T, D: D)
  }

  @inline(always)
  static func scratchPerThread(T: Int, D: Int) -> Int {
    usesTiles(D: D) ? HeadScratch.count(T: T, D: D) : 2 * T * rowStride(T)
  }

  /// Whether attention runs in blocks through `AttentionTile` (head width a multiple of 16, as in
  /// every preset) rather than small sgemms. Not a per-CPU choice.
  @inline(always)
  public static func usesTiles(D: Int) -> Bool { D % 16 == 0 }

  /// Row blocks per head: 1 without a mask; with one, about one block per 48 rows, at most 8.
  @inline(always)
  static func blockCount(T: Int, causal: Bool) -> Int { causal ? min(8, max(1, T / 48)) : 1 }

  /// Softmax of one block of score rows in place, keeping each row's log-sum-exp; entries past a
  /// row's last allowed column are zero up to `cols`.
  @inline(always)
  static func softmaxRows(
    _ s: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, rows: Range<Int>,
    cols: Int, causal: Bool, T: Int, Tp: Int
  ) {
    for i in rows {
      let row = s + i * Tp
      let n = causal ? i + 1 : T
      let width = (n + 15) / 16 * 16
      lse[i] = Softmax.inPlaceMasked(row, valid: n, width: width)
      if width < cols { (row + width).update(repeating: 0, count: cols - width) }
    }
  }

  /// out (B, T, C) and lse (B, H, T) (each score row's log-sum-exp, kept for backward) from
  /// qkv (B, T, 3C) laid out [q | k | v], each head-major (head h = columns h*D..<(h+1)*D).
  /// `scratch` holds scratchCount(T:D:threads:) floats.
  public static func forward(
    out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, causal: Bool,
    B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    if usesTiles(D: D) {
      forwardBlocked(out: out, lse: lse, qkv: qkv, scratch: scratch, causal: causal, B: B, T: T, C: C, H: H)
      return
    }
    let scale = 1 / Float(D).squareRoot()
    let nb = blockCount(T: T, causal: causal)
    let Tp = rowStride(T)
    Parallel.forChunks(B * H) { chunk, pairs in
      let s = scratch + chunk * scratchPerThread(T: T, D: D)  // (T, Tp) scores, then probabilities
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let k = q + C, v = q + 2 * C
        let o = out + b * T * C + h * D
        for block in 0..<nb {
          let rows = Parallel.chunkRange(block, of: nb, count: T)
          let r0 = rows.lowerBound
          let cols = causal ? rows.upperBound : T
          // S (rows, cols) = scale * Q[rows] @ K[0..<cols]^T
          BLAS.sgemm(
            transB: true, m: rows.count, n: cols, k: D, alpha: scale, a: q + r0 * 3 * C,
            lda: 3 * C, b: k, ldb: 3 * C, beta: 0, c: s + r0 * Tp, ldc: Tp)
          softmaxRows(s, lse: lse + bh * T, rows: rows, cols: cols, causal: causal, T: T, Tp: Tp)
          // out[rows] (rows, D) = P (rows, cols) @ V[0..<cols]
          BLAS.sgemm(
            m: rows.count, n: D, k: cols, a: s + r0 * Tp, lda: Tp, b: v, ldb: 3 * C, beta: 0,
            c: o + r0 * C, ldc: C)
        }
      }
    }
  }

  /// dqkv (B, T, 3C) = (overwritten) from dout (B, T, C), given qkv, forward's output `out`
  /// (B, T, C) and the saved lse (B, H, T). `scratch` holds scratchCount(T:D:threads:) floats;
  /// the sgemm path needs it to start zeroed or finite (entries past a row's end are read,
  /// multiplied by P = 0).
  public static func backward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, lse: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    causal: Bool, B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    if usesTiles(D: D) {
      backwardBlocked(
        dqkv: dqkv, dout: dout, out: out, qkv: qkv, lse: lse, scratch: scratch, causal: causal,
        B: B, T: T, C: C, H: H)
      return
    }
    let scale = 1 / Float(D).squareRoot()
    let nb = blockCount(T: T, causal: causal)
    let Tp = rowStride(T)
    Parallel.forChunks(B * H) { chunk, pairs in
      let p = scratch + chunk * scratchPerThread(T: T, D: D)  // (T, Tp) probabilities, rebuilt
      let ds = p + T * Tp  // (T, Tp) dP, then dS
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let k = q + C, v = q + 2 * C
        let dq = dqkv + b * T * 3 * C + h * D
        let dk = dq + C, dv = dq + 2 * C
        let dO = dout + b * T * C + h * D
        let rowLSE = lse + bh * T
        for block in 0..<nb {
          let rows = Parallel.chunkRange(block, of: nb, count: T)
          let r0 = rows.lowerBound
          let cols = causal ? rows.upperBound : T
          // P[rows] = exp(scale * Q[rows] @ K[0..<cols]^T - lse)
          BLAS.sgemm(
            transB: true, m: rows.count, n: cols, k: D, alpha: scale, a: q + r0 * 3 * C,
            lda: 3 * C, b: k, ldb: 3 * C, beta: 0, c: p + r0 * Tp, ldc: Tp)
          // dP (rows, cols) = dO[rows] @ V[0..<cols]^T
          BLAS.sgemm(
            transB: true, m: rows.count, n: cols, k: D, a: dO + r0 * C, lda: C, b: v,
            ldb: 3 * C, beta: 0, c: ds + r0 * Tp, ldc: Tp)
          for i in rows {
            let pr = p + i * Tp, dr = ds + i * Tp
            let n = causal ? i + 1 : T
            let width = (n + 15) / 16 * 16
            Softmax.fromLogSumExp(pr, lse: rowLSE[i], valid: n, width: width)
            // dS = P * (dP - sum_j dP * P), in place; zero where masked (there P = 0).
            Softmax.backwardInPlace(dr, probs: pr, width: width)
            if width < cols {
              (pr + width).update(repeating: 0, count: cols - width)
              (dr + width).update(repeating: 0, count: cols - width)
            }
          }
          // dQ[rows] = scale * dS (rows, cols) @ K[0..<cols]
          BLAS.sgemm(
            m: rows.count, n: D, k: cols, alpha: scale, a: ds + r0 * Tp, lda: Tp, b: k,
            ldb: 3 * C, beta: 0, c: dq + r0 * 3 * C, ldc: 3 * C)
        }
        // Column block c is only attended to by rows c0..<T (causal): it needs those rows alone.
        for block in 0..<nb {
          let cols = Parallel.chunkRange(block, of: nb, count: T)
          let c0 = cols.lowerBound
          let r0 = causal ? c0 : 0
          // dV[cols] = P[r0..<T, cols]^T @ dO[r0..<T] ; dK[cols] = scale * dS[r0..<T, cols]^T @ Q[r0..<T]
          BLAS.sgemm(
            transA: true, m: cols.count, n: D, k: T - r0, a: p + r0 * Tp + c0, lda: Tp,
            b: dO + r0 * C, ldb: C, beta: 0, c: dv + c0 * 3 * C, ldc: 3 * C)
          BLAS.sgemm(
            transA: true, m: cols.count, n: D, k: T - r0, alpha: scale, a: ds + r0 * Tp + c0,
            lda: Tp, b: q + r0 * 3 * C, ldb: 3 * C, beta: 0, c: dk + c0 * 3 * C, ldc: 3 * C)
        }
      }
    }
  }
}
