/// The float <-> byte-plane transforms of the gradient codec, as kernels over raw buffers whose
/// sizes the caller has checked (GradientCodec validates every payload first): they run
/// without Swift's runtime checks, as the other kernels do.
public enum BytePlanes {
  /// Byte b of float i goes to plane b at position i (4 planes of n bytes).
  public static func shuffle(_ src: UnsafeRawPointer, count n: Int, into dst: UnsafeMutableRawPointer) {
    let s = src.assumingMemoryBound(to: UInt8.self)
    let d = dst.assumingMemoryBound(to: UInt8.self)
    for i in 0..<n {
      d[i] = s[4 * i]
      d[n + i] = s[4 * i + 1]
      d[2 * n + i] = s[4 * i + 2]
      d[3 * n + i] = s[4 * i + 3]
    }
  }

  /// The inverse of `shuffle`.
  public static func unshuffle(_ src: UnsafeRawPointer, count n: Int, into dst: UnsafeMutableRawPointer) {
    let s = src.assumingMemoryBound(to: UInt8.self)
    let d = dst.assumingMemoryBound(to: UInt8.self)
    for i in 0..<n {
      d[4 * i] = s[i]
      d[4 * i + 1] = s[n + i]
      d[4 * i + 2] = s[2 * n + i]
      d[4 * i + 3] = s[3 * n + i]
    }
  }

  /// values + residual (n) as bf16 in two planes (high bytes, then low), rounded to nearest
  /// even (NaN and infinities pass through); residual becomes the rounding error.
  public static func packBF16(
    _ values: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>, count n: Int, into out: UnsafeMutableRawPointer
  ) {
    let hi = out.assumingMemoryBound(to: UInt8.self)
    let lo = hi + n
    for i in 0..<n {
      let x = values[i] + residual[i]
      let bits = x.bitPattern
      let rounded = x.isFinite ? bits &+ 0x7FFF &+ ((bits >> 16) & 1) : bits
      let b = UInt16(truncatingIfNeeded: rounded >> 16)
      residual[i] = x - Float(bitPattern: UInt32(b) << 16)
      lo[i] = UInt8(truncatingIfNeeded: b)
      hi[i] = UInt8(truncatingIfNeeded: b >> 8)
    }
  }

  /// Floats (n) from the two bf16 planes of `packBF16`.
  public static func unpackBF16(_ planes: UnsafeRawPointer, count n: Int, into out: UnsafeMutablePointer<Float>) {
    let hi = planes.assumingMemoryBound(to: UInt8.self)
    let low = hi + n
    for j in 0..<n { out[j] = Float(bitPattern: UInt32(hi[j]) << 24 | UInt32(low[j]) << 16) }
  }
}
