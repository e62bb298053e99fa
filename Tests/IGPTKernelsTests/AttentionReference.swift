import Foundation

/// Naive attention in Double, forward and analytic backward, one query row at a time: the
/// oracle the blocked kernels are checked against at every element (its backward is itself
/// checked against central differences).
struct AttentionReference {
  let B: Int, T: Int, C: Int, H: Int, causal: Bool
  var D: Int { C / H }

  /// out (B, T, C) and lse (B, H, T) from qkv (B, T, 3C).
  func forward(_ qkv: [Float]) -> (out: [Double], lse: [Double]) {
    var out = [Double](repeating: 0, count: B * T * C), lse = [Double](repeating: 0, count: B * H * T)
    forEachHead(qkv) { b, h, q, k, v in
      var p = [Double](repeating: 0, count: T)
      for i in 0..<T {
        lse[(b * H + h) * T + i] = probabilities(i, q, k, into: &p)
        for d in 0..<D {
          var acc = 0.0
          for j in 0..<keys(i) { acc += p[j] * v[j * D + d] }
          out[(b * T + i) * C + h * D + d] = acc
        }
      }
    }
    return (out, lse)
  }

  /// dqkv (B, T, 3C) from qkv and dout (B, T, C).
  func backward(_ qkv: [Float], dout: [Float]) -> [Double] {
    var dqkv = [Double](repeating: 0, count: B * T * 3 * C)
    let scale = 1 / Double(D).squareRoot()
    forEachHead(qkv) { b, h, q, k, v in
      var p = [Double](repeating: 0, count: T), ds = [Double](repeating: 0, count: T)
      for i in 0..<T {
        _ = probabilities(i, q, k, into: &p)
        let dO = (0..<D).map { Double(dout[(b * T + i) * C + h * D + $0]) }
        var dot = 0.0
        for j in 0..<keys(i) {
          var dp = 0.0
          for d in 0..<D { dp += dO[d] * v[j * D + d] }
          ds[j] = dp
          dot += dp * p[j]
        }
        for j in 0..<keys(i) {
          let dsj = p[j] * (ds[j] - dot) * scale
          let dq = (b * T + i) * 3 * C + h * D, dk = (b * T + j) * 3 * C + C + h * D
          for d in 0..<D {
            dqkv[dq + d] += dsj * k[j * D + d]
            dqkv[dk + d] += dsj * q[i * D + d]
            dqkv[dk + C + d] += p[j] * dO[d]
          }
        }
      }
    }
    return dqkv
  }

  /// Keys row i sees.
  func keys(_ i: Int) -> Int { causal ? i + 1 : T }

  /// p[0..<keys(i)] = softmax of row i's scores; returns its log-sum-exp.
  func probabilities(_ i: Int, _ q: [Double], _ k: [Double], into p: inout [Double]) -> Double {
    let scale = 1 / Double(D).squareRoot()
    var m = -Double.infinity
    for j in 0..<keys(i) {
      var s = 0.0
      for d in 0..<D { s += q[i * D + d] * k[j * D + d] }
      p[j] = s * scale
      m = max(m, p[j])
    }
    var z = 0.0
    for j in 0..<keys(i) {
      p[j] = exp(p[j] - m)
      z += p[j]
    }
    for j in 0..<keys(i) { p[j] /= z }
    return m + log(z)
  }

  /// Calls body(b, h, Q, K, V) with each head's (T, D) matrices in Double.
  func forEachHead(_ qkv: [Float], _ body: (Int, Int, [Double], [Double], [Double]) -> Void) {
    for b in 0..<B {
      for h in 0..<H {
        func part(_ o: Int) -> [Double] {
          var m = [Double](repeating: 0, count: T * D)
          for t in 0..<T { for d in 0..<D { m[t * D + d] = Double(qkv[(b * T + t) * 3 * C + o * C + h * D + d]) } }
          return m
        }
        body(b, h, part(0), part(1), part(2))
      }
    }
  }
}
