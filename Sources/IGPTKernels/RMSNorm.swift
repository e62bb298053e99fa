/// iGPT's bias-free norm: y = x * rsqrt(mean(x^2) + eps) * g (no centring), forward and backward.
public enum RMSNorm {
  public static let eps: Float = 1e-5

  /// out (N, C), rstd (N) = norm of inp (N, C) with gain g (C).
  public static func forward(
    out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, g: UnsafePointer<Float>, N: Int, C: Int
  ) {
    Parallel.forChunks(N) { _, rows in
      for n in rows {
        let x = inp + n * C
        let o = out + n * C
        let s = (FastMath.dot(x, x, C) / Float(C) + eps).squareRoot()
        let r = 1 / s
        rstd[n] = r
        for i in 0..<C { o[i] = x[i] * r * g[i] }
      }
    }
  }

  /// dinp (N, C) += and dg (C) += from dout (N, C), given inp, g and the saved rstd (N).
  /// With xhat = x * r: dx = r * (dxhat - xhat * mean(dxhat * xhat)), dxhat = dout * g.
  /// `scratch` holds Parallel.threads * C floats for the per-thread partial sums of dg.
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, dg: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, g: UnsafePointer<Float>,
    rstd: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, N: Int, C: Int
  ) {
    let chunks = min(Parallel.threads, max(1, N))
    scratch.update(repeating: 0, count: chunks * C)
    Parallel.forChunks(N) { chunk, rows in
      let partial = scratch + chunk * C
      for n in rows {
        let x = inp + n * C
        let d = dout + n * C
        let dx = dinp + n * C
        let r = rstd[n]
        // mean(dxhat * xhat) = r * sum(d * g * x) / C
        let m = dot3(d, g, x, C) * r / Float(C)
        for i in 0..<C {
          let xhat = x[i] * r
          partial[i] += d[i] * xhat
          dx[i] += r * (d[i] * g[i] - xhat * m)
        }
      }
    }
    for c in 0..<chunks {
      let partial = scratch + c * C
      for i in 0..<C { dg[i] += partial[i] }
    }
  }

  /// sum(a * b * c) with 16 accumulators (a plain loop would run at scalar speed).
  @inline(always)
  static func dot3(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = FastMath.V()
    var i = 0
    while i + 16 <= n {
      acc += FastMath.load(a + i) * FastMath.load(b + i) * FastMath.load(c + i)
      i += 16
    }
    var s = FastMath.sum(acc)
    while i < n {
      s += a[i] * b[i] * c[i]
      i += 1
    }
    return s
  }
}
