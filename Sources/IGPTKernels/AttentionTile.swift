/// The register-blocked product every attention block is made of: eight rows of c at a time.
///
/// Per block, attention's matrices are small (64 x 64, 64 x D), and an sgemm call on them
/// spends more time packing and dispatching than multiplying. This tile keeps eight rows by 32
/// columns of accumulators in SIMD registers (16 of AVX-512's 32) and reads each operand once
/// per tile; callers lay the b operand out contiguously (Attention+Blocks.swift) so its rows
/// stream through the cache instead of landing in one cache set.
///
/// Sums run in one fixed order per output element: c (when accumulating), then the depth in
/// order. With FMA in the compile target (haswell, skylake-avx512, ...), each step is a fused
/// multiply-add written explicitly (`addProduct`), never left to automatic contraction, so those
/// targets give the same bytes whatever their vector width or register count (the tile shape
/// decides which elements share a pass, not how any one is summed). The x86-64 baseline has no
/// FMA (`addProduct` would call libm's `fmaf` per lane, 4-7x slower): it multiplies and adds
/// separately and so computes other bytes, a numerics of its own in the fingerprint.
/// Not inlined: inlined into the per-block loops they compiled to code twice as slow (measured).
enum AttentionTile {
  typealias V = FastMath.V

  /// Rows per tile.
  static let rows = 8

  /// Whether the products fuse each multiply-add (every target but the x86-64 baseline).
  #if IGPT_KERNEL_CPU_baseline
    static let fused = false
  #else
    static let fused = true
  #endif

  /// acc += a * b, fused where the target has FMA (see the type's comment).
  @inline(__always)
  static func madd(_ acc: inout V, _ a: V, _ b: V) {
    #if IGPT_KERNEL_CPU_baseline
      acc += a * b
    #else
      acc.addProduct(a, b)
    #endif
  }

  /// c[r, 0..<n] (+)= sum_{k < depth} a[r * ars + k * aks] * b[k * ldb + 0..<n] for r < nr
  /// (1...8); n is a multiple of 16. With ars = row stride and aks = 1 this is A @ B; with
  /// ars = 1 and aks = row stride, A^T @ B. `accumulate` adds to c (the sum starts from c),
  /// otherwise c is overwritten. Rows past nr are computed from row nr - 1 and not stored.
  @inline(never)
  static func product(
    c: UnsafeMutablePointer<Float>, ldc: Int, a: UnsafePointer<Float>, ars: Int, aks: Int,
    nr: Int, b: UnsafePointer<Float>, ldb: Int, depth: Int, n: Int, accumulate: Bool
  ) {
    #if IGPT_KERNEL_CPU_haswell
      // 16 vector registers: two tiles of 4 rows (8 accumulators each) instead of one of 8
      quad(c: c, ldc: ldc, a: a, ars: ars, aks: aks, nr: min(nr, 4), b: b, ldb: ldb, depth: depth, n: n, accumulate: accumulate)
      if nr > 4 {
        quad(c: c + 4 * ldc, ldc: ldc, a: a + 4 * ars, ars: ars, aks: aks, nr: nr - 4, b: b, ldb: ldb, depth: depth, n: n, accumulate: accumulate)
      }
      return
    #endif
    let a0 = a, a1 = a + min(1, nr - 1) * ars, a2 = a + min(2, nr - 1) * ars
    let a3 = a + min(3, nr - 1) * ars, a4 = a + min(4, nr - 1) * ars
    let a5 = a + min(5, nr - 1) * ars, a6 = a + min(6, nr - 1) * ars
    let a7 = a + min(7, nr - 1) * ars
    // row r of c, clamped like a's rows: loaded when accumulating, stored for r < nr
    let c0 = c, c1 = c + min(1, nr - 1) * ldc, c2 = c + min(2, nr - 1) * ldc
    let c3 = c + min(3, nr - 1) * ldc, c4 = c + min(4, nr - 1) * ldc
    let c5 = c + min(5, nr - 1) * ldc, c6 = c + min(6, nr - 1) * ldc
    let c7 = c + min(7, nr - 1) * ldc
    @inline(__always) func start(_ p: UnsafeMutablePointer<Float>) -> V { accumulate ? FastMath.load(p) : V() }
    var x = 0
    // two 16-lane columns at a time: 16 accumulators
    while x + 32 <= n {
      var s00 = start(c0 + x), s10 = start(c1 + x), s20 = start(c2 + x), s30 = start(c3 + x)
      var s40 = start(c4 + x), s50 = start(c5 + x), s60 = start(c6 + x), s70 = start(c7 + x)
      var s01 = start(c0 + x + 16), s11 = start(c1 + x + 16), s21 = start(c2 + x + 16), s31 = start(c3 + x + 16)
      var s41 = start(c4 + x + 16), s51 = start(c5 + x + 16), s61 = start(c6 + x + 16), s71 = start(c7 + x + 16)
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        let b0 = FastMath.load(p), b1 = FastMath.load(p + 16)
        var s = V(repeating: a0[o])
        madd(&s00, s, b0)
        madd(&s01, s, b1)
        s = V(repeating: a1[o])
        madd(&s10, s, b0)
        madd(&s11, s, b1)
        s = V(repeating: a2[o])
        madd(&s20, s, b0)
        madd(&s21, s, b1)
        s = V(repeating: a3[o])
        madd(&s30, s, b0)
        madd(&s31, s, b1)
        s = V(repeating: a4[o])
        madd(&s40, s, b0)
        madd(&s41, s, b1)
        s = V(repeating: a5[o])
        madd(&s50, s, b0)
        madd(&s51, s, b1)
        s = V(repeating: a6[o])
        madd(&s60, s, b0)
        madd(&s61, s, b1)
        s = V(repeating: a7[o])
        madd(&s70, s, b0)
        madd(&s71, s, b1)
        p += ldb
        o += aks
      }
      FastMath.store(s00, c0 + x)
      FastMath.store(s01, c0 + x + 16)
      if nr > 1 { FastMath.store(s10, c1 + x); FastMath.store(s11, c1 + x + 16) }
      if nr > 2 { FastMath.store(s20, c2 + x); FastMath.store(s21, c2 + x + 16) }
      if nr > 3 { FastMath.store(s30, c3 + x); FastMath.store(s31, c3 + x + 16) }
      if nr > 4 { FastMath.store(s40, c4 + x); FastMath.store(s41, c4 + x + 16) }
      if nr > 5 { FastMath.store(s50, c5 + x); FastMath.store(s51, c5 + x + 16) }
      if nr > 6 { FastMath.store(s60, c6 + x); FastMath.store(s61, c6 + x + 16) }
      if nr > 7 { FastMath.store(s70, c7 + x); FastMath.store(s71, c7 + x + 16) }
      x += 32
    }
    // a last single 16-lane column (n = 16, 48, 80, ...)
    if x < n {
      var s0 = start(c0 + x), s1 = start(c1 + x), s2 = start(c2 + x), s3 = start(c3 + x)
      var s4 = start(c4 + x), s5 = start(c5 + x), s6 = start(c6 + x), s7 = start(c7 + x)
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        let b0 = FastMath.load(p)
        madd(&s0, V(repeating: a0[o]), b0)
        madd(&s1, V(repeating: a1[o]), b0)
        madd(&s2, V(repeating: a2[o]), b0)
        madd(&s3, V(repeating: a3[o]), b0)
        madd(&s4, V(repeating: a4[o]), b0)
        madd(&s5, V(repeating: a5[o]), b0)
        madd(&s6, V(repeating: a6[o]), b0)
        madd(&s7, V(repeating: a7[o]), b0)
        p += ldb
        o += aks
      }
      FastMath.store(s0, c0 + x)
      if nr > 1 { FastMath.store(s1, c1 + x) }
      if nr > 2 { FastMath.store(s2, c2 + x) }
      if nr > 3 { FastMath.store(s3, c3 + x) }
      if nr > 4 { FastMath.store(s4, c4 + x) }
      if nr > 5 { FastMath.store(s5, c5 + x) }
      if nr > 6 { FastMath.store(s6, c6 + x) }
      if nr > 7 { FastMath.store(s7, c7 + x) }
    }
  }

  /// `product` for nr <= 4 rows, 16 columns at a time as two 8-lane halves: each element
  /// summed in the same order (c, then the depth in order, fused) as the 8-row tile.
  @inline(__always)
  static func quad(
    c: UnsafeMutablePointer<Float>, ldc: Int, a: UnsafePointer<Float>, ars: Int, aks: Int,
    nr: Int, b: UnsafePointer<Float>, ldb: Int, depth: Int, n: Int, accumulate: Bool
  ) {
    typealias H = SIMD8<Float>
    let a0 = a, a1 = a + min(1, nr - 1) * ars, a2 = a + min(2, nr - 1) * ars, a3 = a + min(3, nr - 1) * ars
    let c0 = c, c1 = c + min(1, nr - 1) * ldc, c2 = c + min(2, nr - 1) * ldc, c3 = c + min(3, nr - 1) * ldc
    @inline(__always) func ld(_ p: UnsafePointer<Float>) -> H { UnsafeRawPointer(p).loadUnaligned(as: H.self) }
    @inline(__always) func st(_ v: H, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: H.self) }
    @inline(__always) func start(_ p: UnsafeMutablePointer<Float>) -> H { accumulate ? ld(p) : H() }
    @inline(__always) func fma(_ acc: inout H, _ x: H, _ y: H) {
      #if IGPT_KERNEL_CPU_baseline
        acc += x * y
      #else
        acc.addProduct(x, y)
      #endif
    }
    var x = 0
    while x < n {
      var s00 = start(c0 + x), s10 = start(c1 + x), s20 = start(c2 + x), s30 = start(c3 + x)
      var s01 = start(c0 + x + 8), s11 = start(c1 + x + 8), s21 = start(c2 + x + 8), s31 = start(c3 + x + 8)
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        let b0 = ld(p), b1 = ld(p + 8)
        var s = H(repeating: a0[o])
        fma(&s00, s, b0)
        fma(&s01, s, b1)
        s = H(repeating: a1[o])
        fma(&s10, s, b0)
        fma(&s11, s, b1)
        s = H(repeating: a2[o])
        fma(&s20, s, b0)
        fma(&s21, s, b1)
        s = H(repeating: a3[o])
        fma(&s30, s, b0)
        fma(&s31, s, b1)
        p += ldb
        o += aks
      }
      st(s00, c0 + x)
      st(s01, c0 + x + 8)
      if nr > 1 { st(s10, c1 + x); st(s11, c1 + x + 8) }
      if nr > 2 { st(s20, c2 + x); st(s21, c2 + x + 8) }
      if nr > 3 { st(s30, c3 + x); st(s31, c3 + x + 8) }
      x += 16
    }
  }

  /// c[0..<n] (+)= sum_{k < depth} a[k * aks] * b[k * ldb + 0..<n]: one row (the sampler's
  /// single query), with each element summed in the same order as `product`'s.
  @inline(never)
  static func rowProduct(
    c: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, aks: Int, b: UnsafePointer<Float>,
    ldb: Int, depth: Int, n: Int, accumulate: Bool
  ) {
    var x = 0
    while x + 64 <= n {
      var s0 = accumulate ? FastMath.load(c + x) : V(), s1 = accumulate ? FastMath.load(c + x + 16) : V()
      var s2 = accumulate ? FastMath.load(c + x + 32) : V(), s3 = accumulate ? FastMath.load(c + x + 48) : V()
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        let s = V(repeating: a[o])
        madd(&s0, s, FastMath.load(p))
        madd(&s1, s, FastMath.load(p + 16))
        madd(&s2, s, FastMath.load(p + 32))
        madd(&s3, s, FastMath.load(p + 48))
        p += ldb
        o += aks
      }
      FastMath.store(s0, c + x)
      FastMath.store(s1, c + x + 16)
      FastMath.store(s2, c + x + 32)
      FastMath.store(s3, c + x + 48)
      x += 64
    }
    while x < n {
      var s0 = accumulate ? FastMath.load(c + x) : V()
      var p = b + x
      var o = 0
      for _ in 0..<depth {
        madd(&s0, V(repeating: a[o]), FastMath.load(p))
        p += ldb
        o += aks
      }
      FastMath.store(s0, c + x)
      x += 16
    }
  }
}
