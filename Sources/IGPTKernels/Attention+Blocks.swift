import Foundation

/// Attention forward and backward in blocks of 64 queries by 64 keys (head widths a multiple of
/// 16), after FlashAttention-2: no T x T matrix is ever stored, only one block's scores.
///
/// Per (batch, head), the operands are first laid out once in a per-thread scratch: the scaled
/// queries, keys, values and output gradients as contiguous (T, D) rows, and K and V transposed
/// per key block as (D, 64) panels. Every product then reads its b operand contiguously (in
/// qkv's rows, 3C floats apart, a walk down a column kept landing in the same cache sets).
/// Forward runs an online softmax over the key blocks (running max m, running sum l, the output
/// rescaled when m grows) and keeps each row's log-sum-exp; backward walks key blocks outside and
/// query blocks inside, rebuilds P = exp(S - lse), and accumulates dK and dV per key block and dQ
/// per query row, with delta = rowsum(dO * O) in place of rowsum(dP * P) (equal in exact math).
/// With the causal mask, only blocks on or below the diagonal run, and on the diagonal each
/// 8-row tile stops at the first multiple of 16 past its last row.
extension Attention {
  /// Queries (and keys) per block.
  static let block = 64
  /// Keys per span of forward's online softmax: four blocks (a multiple of `block`).
  static let forwardKeys = 256

  /// The per-thread scratch of the blocked kernels, carved from one slab.
  struct HeadScratch {
    let qs, kr, vr, dO, acc: UnsafeMutablePointer<Float>  // (Tp, D) rows: Q * scale, K, V, dO; O or dQ sums
    let kt, vt: UnsafeMutablePointer<Float>  // (key blocks, D, 64): K^T and V^T per key block
    let s: UnsafeMutablePointer<Float>  // (64, 256): forward's scores/P for a span; backward's (64, 64)
    let ds: UnsafeMutablePointer<Float>  // (64, 64): one block's dP/dS
    let dk, dv: UnsafeMutablePointer<Float>  // (64, D): one key block's gradient sums
    let rowA, rowB: UnsafeMutablePointer<Float>  // (Tp): m and l forward, delta backward

    static func keyBlocks(_ T: Int) -> Int { (rowStride(T) + block - 1) / block }

    static func count(T: Int, D: Int) -> Int {
      let Tp = rowStride(T)
      return 5 * Tp * D + 2 * keyBlocks(T) * D * block + block * (forwardKeys + block) + 2 * block * D + 2 * Tp
    }

    init(_ base: UnsafeMutablePointer<Float>, T: Int, D: Int) {
      let Tp = rowStride(T), panels = HeadScratch.keyBlocks(T) * D * block
      qs = base; kr = qs + Tp * D; vr = kr + Tp * D; dO = vr + Tp * D; acc = dO + Tp * D
      kt = acc + Tp * D; vt = kt + panels
      s = vt + panels; ds = s + block * forwardKeys
      dk = ds + block * block; dv = dk + block * D
      rowA = dv + block * D; rowB = rowA + Tp
    }
  }

  /// dst (Tp, D) = scale * src rows 0..<T (row stride lds), rows T..<Tp zero.
  static func packRows(
    _ src: UnsafePointer<Float>, lds: Int, T: Int, D: Int, scale: Float = 1,
    into dst: UnsafeMutablePointer<Float>
  ) {
    let vs = FastMath.V(repeating: scale)
    for i in 0..<T {
      var d = 0
      while d < D {
        FastMath.store(FastMath.load(src + i * lds + d) * vs, dst + i * D + d)
        d += 16
      }
    }
    (dst + T * D).update(repeating: 0, count: (rowStride(T) - T) * D)
  }

  /// dst[blk][d][jj] = src[(64 blk + jj) * lds + d], zero for keys past T: each key block's
  /// (D, 64) panel of the transpose.
  static func packPanels(
    _ src: UnsafePointer<Float>, lds: Int, T: Int, D: Int, into dst: UnsafeMutablePointer<Float>
  ) {
    var j0 = 0
    while j0 < T {
      let keys = min(block, T - j0), panel = dst + (j0 / block) * D * block
      BLAS.transpose(rows: keys, cols: D, a: src + j0 * lds, lda: lds, into: panel, ldb: block)
      if keys < block {
        for d in 0..<D { (panel + d * block + keys).update(repeating: 0, count: block - keys) }
      }
      j0 += block
    }
  }

  /// dst[0..<count] = src[0..<count] * factor (count a multiple of 16; dst may be src).
  @inline(always)
  static func scaleRow(_ src: UnsafeMutablePointer<Float>, by factor: Float, count: Int, into dst: UnsafeMutablePointer<Float>? = nil) {
    let v = FastMath.V(repeating: factor), dst = dst ?? src
    var d = 0
    while d < count {
      FastMath.store(FastMath.load(src + d) * v, dst + d)
      d += 16
    }
  }

  /// Columns of a tile of score rows that must be computed, for keys from j0 on: all kw without
  /// the mask; with it, through the first multiple of 16 past the tile's last row, whose end
  /// `rowsEnd` = q0 + r0 + nr - j0 is counted from j0 (below the diagonal that is all kw).
  @inline(always)
  static func tileWidth(rowsEnd: Int, kw: Int, causal: Bool) -> Int {
    causal ? min(kw, (rowsEnd + 15) / 16 * 16) : kw
  }

  /// Keys of a block row r (query q0 + r) may see: all keys below T without the mask; with
  /// it, keys up to its own position. At least 1 and more than width - 16.
  @inline(always)
  static func validKeys(q: Int, j0: Int, width: Int, causal: Bool, T: Int) -> Int {
    min(width, causal ? q + 1 - j0 : T - j0)
  }

  static func forwardBlocked(
    out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, causal: Bool,
    B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    let scale = 1 / Float(D).squareRoot()
    let Tp = rowStride(T)
    Parallel.forChunks(B * H) { chunk, pairs in
      let w = HeadScratch(scratch + chunk * scratchPerThread(T: T, D: D), T: T, D: D)
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        packRows(q, lds: 3 * C, T: T, D: D, scale: scale, into: w.qs)
        packPanels(q + C, lds: 3 * C, T: T, D: D, into: w.kt)
        packRows(q + 2 * C, lds: 3 * C, T: T, D: D, into: w.vr)
        var q0 = 0
        while q0 < T {
          let qn = min(block, T - q0)
          forwardQueryBlock(w, q0: q0, qn: qn, causal: causal, T: T, Tp: Tp, D: D)
          // out = O / l ; lse = m + log(l)
          for r in 0..<qn {
            scaleRow(w.acc + r * D, by: 1 / w.rowB[r], count: D, into: out + (b * T + q0 + r) * C + h * D)
            lse[bh * T + q0 + r] = w.rowA[r] + logf(w.rowB[r])
          }
          q0 += block
        }
      }
    }
  }

  /// One query block's output sums O (qn, D) in w.acc and each row's running max m (w.rowA)
  /// and sum l (w.rowB), over the keys it sees in spans of `forwardKeys` (four key blocks' panels
  /// side by side: a wider span spreads each row's max, sum and rescale over more scores).
  @inline(always)
  static func forwardQueryBlock(_ w: HeadScratch, q0: Int, qn: Int, causal: Bool, T: Int, Tp: Int, D: Int) {
    let keyEnd = causal ? q0 + qn : T
    var j0 = 0
    while j0 < keyEnd {
      let kw = min(forwardKeys, Tp - j0)
      var r0 = 0
      while r0 < qn {
        let nr = min(AttentionTile.rows, qn - r0)
        let width = tileWidth(rowsEnd: q0 + r0 + nr - j0, kw: kw, causal: causal)
        let rows = w.s + r0 * forwardKeys
        // S (nr, width) = (scale Q)[rows] @ K[keys]^T, one key block's panel at a time
        var x = 0
        while x < width {
          AttentionTile.product(
            c: rows + x, ldc: forwardKeys, a: w.qs + (q0 + r0) * D, ars: D, aks: 1, nr: nr,
            b: w.kt + ((j0 + x) / block) * D * block, ldb: block, depth: D, n: min(block, width - x),
            accumulate: false)
          x += block
        }
        for r in r0..<(r0 + nr) {
          let valid = validKeys(q: q0 + r, j0: j0, width: width, causal: causal, T: T)
          let corr = Softmax.onlineBlockRow(
            w.s + r * forwardKeys, valid: valid, width: width, max: &w.rowA[r], sum: &w.rowB[r], first: j0 == 0)
          if j0 > 0 && corr != 1 { scaleRow(w.acc + r * D, by: corr, count: D) }
        }
        // O[rows] (+)= P (nr, width) @ V[keys]
        AttentionTile.product(
          c: w.acc + r0 * D, ldc: D, a: rows, ars: forwardKeys, aks: 1, nr: nr,
          b: w.vr + j0 * D, ldb: D, depth: width, n: D, accumulate: j0 > 0)
        r0 += AttentionTile.rows
      }
      j0 += forwardKeys
    }
  }

  static func backwardBlocked(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, lse: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
    causal: Bool, B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    let scale = 1 / Float(D).squareRoot()
    let Tp = rowStride(T)
    Parallel.forChunks(B * H) { chunk, pairs in
      let w = HeadScratch(scratch + chunk * scratchPerThread(T: T, D: D), T: T, D: D)
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let dq = dqkv + b * T * 3 * C + h * D
        packRows(q, lds: 3 * C, T: T, D: D, scale: scale, into: w.qs)
        packRows(q + C, lds: 3 * C, T: T, D: D, into: w.kr)
        packPanels(q + C, lds: 3 * C, T: T, D: D, into: w.kt)
        packPanels(q + 2 * C, lds: 3 * C, T: T, D: D, into: w.vt)
        packRows(dout + b * T * C + h * D, lds: C, T: T, D: D, into: w.dO)
        for i in 0..<T { w.rowA[i] = FastMath.dot(w.dO + i * D, out + (b * T + i) * C + h * D, D) }
        var j0 = 0
        while j0 < T {
          backwardKeyBlock(w, j0: j0, lse: lse + bh * T, causal: causal, T: T, Tp: Tp, D: D)
          // dK = dS^T (scale Q) and dV = P^T dO for the block's keys below T
          for jj in 0..<min(block, T - j0) {
            (dq + C + (j0 + jj) * 3 * C).update(from: w.dk + jj * D, count: D)
            (dq + 2 * C + (j0 + jj) * 3 * C).update(from: w.dv + jj * D, count: D)
          }
          j0 += block
        }
        // dQ = scale * dS @ K
        for i in 0..<T { scaleRow(w.acc + i * D, by: scale, count: D, into: dq + i * 3 * C) }
      }
    }
  }

  /// One key block's dK and dV sums (w.dk, w.dv) over every query block that sees it, adding
  /// its share of dS @ K to each query row's dQ sum (w.acc).
  @inline(always)
  static func backwardKeyBlock(
    _ w: HeadScratch, j0: Int, lse: UnsafePointer<Float>, causal: Bool, T: Int, Tp: Int, D: Int
  ) {
    let kw = min(block, Tp - j0), keys = min(block, T - j0)
    let panel = (j0 / block) * D * block
    let qStart = causal ? j0 : 0
    var q0 = qStart
    while q0 < T {
      let qn = min(block, T - q0), diagonal = causal && q0 == j0
      var r0 = 0
      while r0 < qn {
        let nr = min(AttentionTile.rows, qn - r0)
        let width = tileWidth(rowsEnd: q0 + r0 + nr - j0, kw: kw, causal: causal)
        // S = (scale Q) K^T, dP = dO V^T over the tile's rows and width
        AttentionTile.product(
          c: w.s + r0 * block, ldc: block, a: w.qs + (q0 + r0) * D, ars: D, aks: 1, nr: nr,
          b: w.kt + panel, ldb: block, depth: D, n: width, accumulate: false)
        AttentionTile.product(
          c: w.ds + r0 * block, ldc: block, a: w.dO + (q0 + r0) * D, ars: D, aks: 1, nr: nr,
          b: w.vt + panel, ldb: block, depth: D, n: width, accumulate: false)
        for r in r0..<(r0 + nr) {
          let valid = validKeys(q: q0 + r, j0: j0, width: width, causal: causal, T: T)
          let i = q0 + r
          Softmax.fromLogSumExp(w.s + r * block, lse: lse[i], valid: valid, width: width)
          // dS = P * (dP - delta), 0 where masked (there P = 0)
          Softmax.backwardGivenDot(w.ds + r * block, probs: w.s + r * block, dot: w.rowA[i], width: width)
        }
        // dQ[rows] (+)= dS (nr, width) @ K[keys]
        AttentionTile.product(
          c: w.acc + (q0 + r0) * D, ldc: D, a: w.ds + r0 * block, ars: block, aks: 1, nr: nr,
          b: w.kr + j0 * D, ldb: D, depth: width, n: D, accumulate: j0 > 0)
        r0 += AttentionTile.rows
      }
      // keys jj..<jj+8 of the block: queries below the diagonal only, whose tiles reach past jj + 8
      var jj = 0
      while jj < keys {
        let nk = min(AttentionTile.rows, keys - jj), qa = diagonal ? jj : 0
        AttentionTile.product(
          c: w.dv + jj * D, ldc: D, a: w.s + qa * block + jj, ars: 1, aks: block, nr: nk,
          b: w.dO + (q0 + qa) * D, ldb: D, depth: qn - qa, n: D, accumulate: q0 > qStart)
        AttentionTile.product(
          c: w.dk + jj * D, ldc: D, a: w.ds + qa * block + jj, ars: 1, aks: block, nr: nk,
          b: w.qs + (q0 + qa) * D, ldb: D, depth: qn - qa, n: D, accumulate: q0 > qStart)
        jj += AttentionTile.rows
      }
      q0 += block
    }
  }
}
