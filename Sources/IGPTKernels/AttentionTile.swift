/// Register-blocked products for one attention head, eight rows at a time.
///
/// Per (batch, head), attention's matrices are tiny (T x D, D = 32..128), and an sgemm call on
/// them spends more time packing and dispatching than multiplying: at the bench shape the two
/// forward sgemms per row block ran at a quarter of the machine's peak. These two tiles cover
/// every product attention needs, keep eight rows' accumulators in SIMD registers, and read each
/// operand once per tile. Sums run in one fixed order (over the depth, lane by lane), with
/// separate multiply and add (never fused, which would make baseline builds call `fmaf` per
/// lane), so every build gives the same bytes. Eight rows of accumulators fill AVX-512's 32
/// vector registers; builds for smaller register files spill some but compute the same sums.
/// Not inlined: inlined into the per-head loops they compiled to code twice as slow (measured).
enum AttentionTile {
  typealias V = FastMath.V

  /// Rows per tile.
  static let rows = 8

  /// c[r, 0..<width] = alpha * sum_d a[r, d] * bt[d, 0..<width] for r < nr (1...8).
  /// Row r of a starts at a + r * lda (depth floats); row d of bt at bt + d * ldbt; width is a
  /// multiple of 16. Rows past nr are computed from row nr - 1 and not stored.
  @inline(never)
  static func rowsTimesTransposed(
    c: UnsafeMutablePointer<Float>, ldc: Int, a: UnsafePointer<Float>, lda: Int, nr: Int,
    bt: UnsafePointer<Float>, ldbt: Int, depth: Int, width: Int, alpha: Float
  ) {
    let a0 = a, a1 = a + min(1, nr - 1) * lda, a2 = a + min(2, nr - 1) * lda
    let a3 = a + min(3, nr - 1) * lda, a4 = a + min(4, nr - 1) * lda
    let a5 = a + min(5, nr - 1) * lda, a6 = a + min(6, nr - 1) * lda
    let a7 = a + min(7, nr - 1) * lda
    let va = V(repeating: alpha)
    var j = 0
    while j < width {
      var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
      var p = bt + j
      for d in 0..<depth {
        let b = FastMath.load(p)
        c0 += V(repeating: a0[d]) * b
        c1 += V(repeating: a1[d]) * b
        c2 += V(repeating: a2[d]) * b
        c3 += V(repeating: a3[d]) * b
        c4 += V(repeating: a4[d]) * b
        c5 += V(repeating: a5[d]) * b
        c6 += V(repeating: a6[d]) * b
        c7 += V(repeating: a7[d]) * b
        p += ldbt
      }
      let out = c + j
      FastMath.store(c0 * va, out)
      if nr > 1 { FastMath.store(c1 * va, out + ldc) }
      if nr > 2 { FastMath.store(c2 * va, out + 2 * ldc) }
      if nr > 3 { FastMath.store(c3 * va, out + 3 * ldc) }
      if nr > 4 { FastMath.store(c4 * va, out + 4 * ldc) }
      if nr > 5 { FastMath.store(c5 * va, out + 5 * ldc) }
      if nr > 6 { FastMath.store(c6 * va, out + 6 * ldc) }
      if nr > 7 { FastMath.store(c7 * va, out + 7 * ldc) }
      j += 16
    }
  }

  /// c[r, 0..<n] = alpha * sum_{k < depth} a[r * ars + k * aks] * b[k * ldb + 0..<n] for r < nr
  /// (1...8); n is a multiple of 16. With ars = row stride and aks = 1 this is A @ B; with ars = 1
  /// and aks = row stride, A^T @ B. Rows past nr are computed from row nr - 1 and not stored.
  @inline(never)
  static func stridedTimes(
    c: UnsafeMutablePointer<Float>, ldc: Int, a: UnsafePointer<Float>, ars: Int, aks: Int,
    nr: Int, b: UnsafePointer<Float>, ldb: Int, depth: Int, n: Int, alpha: Float
  ) {
    let a0 = a, a1 = a + min(1, nr - 1) * ars, a2 = a + min(2, nr - 1) * ars
    let a3 = a + min(3, nr - 1) * ars, a4 = a + min(4, nr - 1) * ars
    let a5 = a + min(5, nr - 1) * ars, a6 = a + min(6, nr - 1) * ars
    let a7 = a + min(7, nr - 1) * ars
    let va = V(repeating: alpha)
    var x = 0
    // two 16-lane columns at a time: 16 accumulators
    while x + 32 <= n {
      var c00 = V(), c10 = V(), c20 = V(), c30 = V(), c40 = V(), c50 = V(), c60 = V(), c70 = V()
      var c01 = V(), c11 = V(), c21 = V(), c31 = V(), c41 = V(), c51 = V(), c61 = V(), c71 = V()
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        let b0 = FastMath.load(p), b1 = FastMath.load(p + 16)
        var s = V(repeating: a0[o])
        c00 += s * b0
        c01 += s * b1
        s = V(repeating: a1[o])
        c10 += s * b0
        c11 += s * b1
        s = V(repeating: a2[o])
        c20 += s * b0
        c21 += s * b1
        s = V(repeating: a3[o])
        c30 += s * b0
        c31 += s * b1
        s = V(repeating: a4[o])
        c40 += s * b0
        c41 += s * b1
        s = V(repeating: a5[o])
        c50 += s * b0
        c51 += s * b1
        s = V(repeating: a6[o])
        c60 += s * b0
        c61 += s * b1
        s = V(repeating: a7[o])
        c70 += s * b0
        c71 += s * b1
        p += ldb
        o += aks
      }
      let out = c + x
      FastMath.store(c00 * va, out)
      FastMath.store(c01 * va, out + 16)
      if nr > 1 { FastMath.store(c10 * va, out + ldc); FastMath.store(c11 * va, out + ldc + 16) }
      if nr > 2 { FastMath.store(c20 * va, out + 2 * ldc); FastMath.store(c21 * va, out + 2 * ldc + 16) }
      if nr > 3 { FastMath.store(c30 * va, out + 3 * ldc); FastMath.store(c31 * va, out + 3 * ldc + 16) }
      if nr > 4 { FastMath.store(c40 * va, out + 4 * ldc); FastMath.store(c41 * va, out + 4 * ldc + 16) }
      if nr > 5 { FastMath.store(c50 * va, out + 5 * ldc); FastMath.store(c51 * va, out + 5 * ldc + 16) }
      if nr > 6 { FastMath.store(c60 * va, out + 6 * ldc); FastMath.store(c61 * va, out + 6 * ldc + 16) }
      if nr > 7 { FastMath.store(c70 * va, out + 7 * ldc); FastMath.store(c71 * va, out + 7 * ldc + 16) }
      x += 32
    }
    // a last single 16-lane column (n = 16, 48, 80, ...)
    if x < n {
      var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        let b0 = FastMath.load(p)
        c0 += V(repeating: a0[o]) * b0
        c1 += V(repeating: a1[o]) * b0
        c2 += V(repeating: a2[o]) * b0
        c3 += V(repeating: a3[o]) * b0
        c4 += V(repeating: a4[o]) * b0
        c5 += V(repeating: a5[o]) * b0
        c6 += V(repeating: a6[o]) * b0
        c7 += V(repeating: a7[o]) * b0
        p += ldb
        o += aks
      }
      let out = c + x
      FastMath.store(c0 * va, out)
      if nr > 1 { FastMath.store(c1 * va, out + ldc) }
      if nr > 2 { FastMath.store(c2 * va, out + 2 * ldc) }
      if nr > 3 { FastMath.store(c3 * va, out + 3 * ldc) }
      if nr > 4 { FastMath.store(c4 * va, out + 4 * ldc) }
      if nr > 5 { FastMath.store(c5 * va, out + 5 * ldc) }
      if nr > 6 { FastMath.store(c6 * va, out + 6 * ldc) }
      if nr > 7 { FastMath.store(c7 * va, out + 7 * ldc) }
    }
  }

  /// dst (depth, ld) = src^T for src (rows, depth) with row stride lds; columns rows..<ld zeroed.
  @inline(always)
  static func transpose(
    _ src: UnsafePointer<Float>, lds: Int, rows: Int, depth: Int,
    into dst: UnsafeMutablePointer<Float>, ld: Int
  ) {
    for j in 0..<rows {
      let row = src + j * lds
      for d in 0..<depth { dst[d * ld + j] = row[d] }
    }
    if ld > rows {
      for d in 0..<depth { (dst + d * ld + rows).update(repeating: 0, count: ld - rows) }
    }
  }
}
