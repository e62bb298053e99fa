/// Residual connection out = a + b.
///
/// Its backward is the identity into both inputs, so the model needs no backward kernel: it keeps
/// one gradient buffer for the residual stream, and each branch adds its input gradient into it.
public enum Residual {
  /// out (N) = a (N) + b (N).
  public static func forward(
    out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, N: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, r in
      var i = r.lowerBound
      while i + 16 <= r.upperBound {
        FastMath.store(FastMath.load(a + i) + FastMath.load(b + i), out + i)
        i += 16
      }
      while i < r.upperBound {
        out[i] = a[i] + b[i]
        i += 1
      }
    }
  }
}
