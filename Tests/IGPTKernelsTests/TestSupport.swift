import IGPTKernels

/// Random Float buffers and a central-difference checker for kernel tests.
struct Rand {
  var rng: SeededRandom
  init(_ seed: UInt64) { rng = SeededRandom(seed: seed) }
  mutating func normal(_ n: Int, std: Double = 1) -> [Float] {
    (0..<n).map { _ in Float(rng.normal() * std) }
  }
}

/// Compares an analytic gradient with central differences of a scalar function at sampled
/// coordinates; returns the worst |fd - analytic| / max(|fd|, |analytic|, floor).
func worstGradientError(
  x: inout [Float], analytic: [Float], eps: Float = 1e-2, floor: Float = 1e-2,
  samples: Int = 24, seed: UInt64 = 9, f: ([Float]) -> Double
) -> Float {
  var rng = SeededRandom(seed: seed)
  var worst: Float = 0
  let picks = x.count <= samples ? Array(0..<x.count) : (0..<samples).map { _ in Int(rng.next() % UInt64(x.count)) }
  for i in picks {
    let saved = x[i]
    x[i] = saved + eps
    let up = f(x)
    x[i] = saved - eps
    let down = f(x)
    x[i] = saved
    let fd = Float((up - down) / (2 * Double(eps)))
    let err = abs(fd - analytic[i]) / max(abs(fd), abs(analytic[i]), floor)
    worst = max(worst, err)
  }
  return worst
}

/// sum(a * w) in Double: the scalar the checks differentiate (w plays the role of dout).
func weightedSum(_ a: [Float], _ w: [Float]) -> Double {
  var s = 0.0
  for i in a.indices { s += Double(a[i]) * Double(w[i]) }
  return s
}
