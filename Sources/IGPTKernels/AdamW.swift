/// One AdamW step over flat slabs (parameters, gradients, both moments), with bias correction.
public enum AdamW {
  /// Hyper-parameters of one update.
  public struct Step: Sendable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0
    /// 1-based step number, for bias correction.
    public var t: Int
    public init(learningRate: Float, t: Int, beta1: Float = 0.9, beta2: Float = 0.95,
                eps: Float = 1e-8, weightDecay: Float = 0) {
      self.learningRate = learningRate; self.t = t; self.beta1 = beta1; self.beta2 = beta2
      self.eps = eps; self.weightDecay = weightDecay
    }
  }

  /// params, m, v (count) updated from grads (count), scaled by gradScale (e.g. for clipping).
  public static func update(
    params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
    m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
    step s: Step, gradScale: Float = 1
  ) {
    let b1 = s.beta1, b2 = s.beta2
    let c1 = 1 / (1 - Float(Double(b1).power(s.t)))
    let c2 = 1 / (1 - Float(Double(b2).power(s.t)))
    let lr = s.learningRate, eps = s.eps, wd = s.weightDecay
    typealias V = FastMath.V
    Parallel.forChunks(count, align: 16) { _, r in
      var i = r.lowerBound
      // 16 lanes at a time; the scalar tail below uses the same formulas (sqrt16 on one lane).
      while i + 16 <= r.upperBound {
        let g = FastMath.load(grads + i) * V(repeating: gradScale)
        let mi = V(repeating: b1) * FastMath.load(m + i) + V(repeating: 1 - b1) * g
        let vi = V(repeating: b2) * FastMath.load(v + i) + V(repeating: 1 - b2) * g * g
        FastMath.store(mi, m + i)
        FastMath.store(vi, v + i)
        let update = (mi * V(repeating: c1)) / (FastMath.sqrt16(vi * V(repeating: c2)) + V(repeating: eps))
        let p = FastMath.load(params + i)
        FastMath.store(p - V(repeating: lr) * (update + V(repeating: wd) * p), params + i)
        i += 16
      }
      while i < r.upperBound {
        let g = grads[i] * gradScale
        let mi = b1 * m[i] + (1 - b1) * g
        let vi = b2 * v[i] + (1 - b2) * g * g
        m[i] = mi
        v[i] = vi
        let root = FastMath.sqrt16(V(repeating: vi * c2))[0]
        let update = (mi * c1) / (root + eps)
        params[i] -= lr * (update + wd * params[i])
        i += 1
      }
    }
  }
}

extension Double {
  /// self^n for a non-negative integer n (exact repeated squaring, no libm).
  func power(_ n: Int) -> Double {
    var result = 1.0, base = self, e = n
    while e > 0 {
      if e & 1 == 1 { result *= base }
      base *= base
      e >>= 1
    }
    return result
  }
}
