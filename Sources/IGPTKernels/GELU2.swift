/// iGPT's activation gelu2(x) = x * sigmoid(1.702 x) (Hugging Face: quick_gelu), forward and backward.
public enum GELU2 {
  typealias V = FastMath.V

  /// out (N) = gelu2(inp (N)).
  public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    Parallel.forChunks(N, align: 16) { _, r in
      var i = r.lowerBound
      while i + 16 <= r.upperBound {
        let x = FastMath.load(inp + i)
        let s = 1 / (1 + FastMath.exp16(x * V(repeating: -1.702)))
        FastMath.store(x * s, out + i)
        i += 16
      }
      if i < r.upperBound {
        let n = r.upperBound - i
        let x = FastMath.loadPartial(inp + i, n)
        let s = 1 / (1 + FastMath.exp16(x * V(repeating: -1.702)))
        FastMath.storePartial(x * s, out + i, n)
      }
    }
  }

  /// dinp (N) = dout * gelu2'(inp); d/dx = s + 1.702 x s (1 - s). Overwrites (dinp may alias dout).
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, N: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, r in
      var i = r.lowerBound
      while i + 16 <= r.upperBound {
        FastMath.store(derivative(FastMath.load(inp + i)) * FastMath.load(dout + i), dinp + i)
        i += 16
      }
      if i < r.upperBound {
        let n = r.upperBound - i
        let g = derivative(FastMath.loadPartial(inp + i, n)) * FastMath.loadPartial(dout + i, n)
        FastMath.storePartial(g, dinp + i, n)
      }
    }
  }

  @inline(__always)
  static func derivative(_ x: V) -> V {
    let s = 1 / (1 + FastMath.exp16(x * V(repeating: -1.702)))
    return s + V(repeating: 1.702) * x * s * (1 - s)
  }
}
