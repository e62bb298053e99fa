/// Vectorised transcendental functions for the hot loops.
///
/// Swift's `exp` on Float is a scalar libm call; softmax over attention scores and gelu2 call it
/// millions of times per step. `exp16` is the Cephes single-precision polynomial on 16 lanes
/// (relative error about 2e-7), using only adds, multiplies and integer shifts.
public enum FastMath {
  public typealias V = SIMD16<Float>

  /// e^x on 16 lanes; inputs are clamped to [-87.3, 88.3] (results saturate, never inf/NaN).
  @inline(always)
  public static func exp16(_ xIn: V) -> V {
    // Not `clamped` or `pointwiseMin`: those compile to per-lane calls, 13x slower (measured).
    let x = min16(max16(xIn, V(repeating: -87.3)), V(repeating: 88.3))
    // n = round(x / ln 2) via the 1.5 * 2^23 trick: the integer lands in the low mantissa bits.
    let shifter = V(repeating: 12_582_912.0)
    let t = x * V(repeating: 1.442_695_04) + shifter
    let n = t - shifter
    var r = x - n * V(repeating: 0.693_359_375)
    r = r - n * V(repeating: -2.121_944_4e-4)
    var p = V(repeating: 1.987_569_15e-4)
    p = p * r + V(repeating: 1.398_199_95e-3)
    p = p * r + V(repeating: 8.333_451_9e-3)
    p = p * r + V(repeating: 4.166_579_59e-2)
    p = p * r + V(repeating: 1.666_666_55e-1)
    p = p * r + V(repeating: 5.000_000_12e-1)
    let er = p * (r * r) + r + V(repeating: 1)
    let nBits = unsafeBitCast(t, to: SIMD16<Int32>.self) &- SIMD16<Int32>(repeating: 0x4B40_0000)
    let scale = unsafeBitCast((nBits &+ SIMD16<Int32>(repeating: 127)) &<< 23, to: V.self)
    return er * scale
  }

  /// Square root on 16 lanes as x * rsqrt(x): a bit-trick estimate refined by three Newton steps
  /// (relative error about 1e-7). `squareRoot()` on SIMD and even on Float compiles to a libm
  /// `sqrtf` call per lane here, 10x slower. Zero (and anything below 1e-30) gives 0.
  @inline(always)
  public static func sqrt16(_ x: V) -> V {
    let xs = max16(x, V(repeating: 1e-30))
    let bits = SIMD16<Int32>(repeating: 0x5F37_59DF) &- (unsafeBitCast(xs, to: SIMD16<Int32>.self) &>> 1)
    var y = unsafeBitCast(bits, to: V.self)
    let half = xs * V(repeating: 0.5)
    let threeHalves = V(repeating: 1.5)
    y = y * (threeHalves - half * y * y)
    y = y * (threeHalves - half * y * y)
    y = y * (threeHalves - half * y * y)
    return (x * y).replacing(with: 0, where: x .< V(repeating: 1e-30))
  }

  /// Lane-wise maximum, through a compare and blend (vectorises; `pointwiseMax` does not).
  @inline(always)
  public static func max16(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .> a) }

  /// Lane-wise minimum, through a compare and blend.
  @inline(always)
  public static func min16(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .< a) }

  /// e^x for one value, through the same polynomial (so scalar tails match the vector body).
  @inline(always)
  public static func exp(_ x: Float) -> Float { exp16(V(repeating: x))[0] }

  /// Loads up to 16 floats (the rest zero) for a loop's tail.
  @inline(always)
  public static func loadPartial(_ p: UnsafePointer<Float>, _ n: Int) -> V {
    var v = V()
    for i in 0..<n { v[i] = p[i] }
    return v
  }

  /// Stores the first n lanes of v.
  @inline(always)
  public static func storePartial(_ v: V, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
  }

  /// Loads 16 floats.
  @inline(always)
  public static func load(_ p: UnsafePointer<Float>) -> V {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
  }

  /// Stores 16 floats.
  @inline(always)
  public static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
  }

  /// Sum of the 16 lanes as a fixed tree (8 + 8, 4 + 4, 2 + 2, 1 + 1): four vector adds where
  /// `sum()` compiles to a chain of 15 dependent scalar adds. The same order in every build.
  @inline(always)
  public static func sum(_ v: V) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
  }

  /// Largest of the 16 lanes, as a tree of blends (`max()` compiles to a scalar loop with NaN
  /// branches, about 10x slower).
  @inline(always)
  public static func maximum(_ v: V) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return Swift.max(c[0], c[1])
  }

  /// sum(a[i] * b[i]) with 16 accumulators.
  @inline(always)
  public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = V()
    var i = 0
    while i + 16 <= n {
      acc += load(a + i) * load(b + i)
      i += 16
    }
    var s = sum(acc)
    while i < n {
      s += a[i] * b[i]
      i += 1
    }
    return s
  }
}
