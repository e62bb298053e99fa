/// iGPT's activation gelu2(x) = x * sigmoid(1.702 x) (Hugging Face: quick_gelu), forward and backward.
///
/// Forward also returns s = sigmoid(1.702 x). With y = x * s the derivative is
/// s + 1.702 * y * (1 - s), so backward needs y and s only: no second exp, and s can overwrite
/// x in place (the model keeps s where the pre-activation was).
public enum GELU2 {
  typealias V = FastMath.V

  /// out (N) = gelu2(inp (N)), sig (N) = sigmoid(1.702 inp) unless nil (forward-only passes
  /// skip that store: one stream of memory traffic less). sig may alias inp.
  public static func forward(
    out: UnsafeMutablePointer<Float>, sig: UnsafeMutablePointer<Float>?, inp: UnsafePointer<Float>,
    N: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, r in
      var i = r.lowerBound
      while i + 16 <= r.upperBound {
        let x = FastMath.load(inp + i)
        let s = 1 / (1 + FastMath.exp16(x * V(repeating: -1.702)))
        FastMath.store(x * s, out + i)
        if let sig { FastMath.store(s, sig + i) }
        i += 16
      }
      if i < r.upperBound {
        let n = r.upperBound - i
        let x = FastMath.loadPartial(inp + i, n)
        let s = 1 / (1 + FastMath.exp16(x * V(repeating: -1.702)))
        FastMath.storePartial(x * s, out + i, n)
        if let sig { FastMath.storePartial(s, sig + i, n) }
      }
    }
  }

  /// dinp (N) = dout * gelu2'(x), from out = gelu2(x) and sig = sigmoid(1.702 x).
  /// Overwrites dinp (which may alias dout).
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
    sig: UnsafePointer<Float>, N: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, r in
      var i = r.lowerBound
      while i + 16 <= r.upperBound {
        let s = FastMath.load(sig + i), y = FastMath.load(out + i)
        let d = s + V(repeating: 1.702) * y * (1 - s)
        FastMath.store(d * FastMath.load(dout + i), dinp + i)
        i += 16
      }
      while i < r.upperBound {
        let s = sig[i], y = out[i]
        dinp[i] = (s + 1.702 * y * (1 - s)) * dout[i]
        i += 1
      }
    }
  }
}
