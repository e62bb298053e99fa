/// Multi-head scaled dot-product attention, causal (AR) or bidirectional (BERT), forward and backward.
///
/// Per (batch, head) the scores are one sgemm over strided views of qkv, the softmax runs in
/// place, and the weighted sum is a second sgemm; threads split the (batch, head) pairs.
public enum Attention {
  /// out (B, T, C) and att (B, H, T, T) (the softmax probabilities, kept for backward)
  /// from qkv (B, T, 3C) laid out [q | k | v], each head-major (head h = columns h*D..<(h+1)*D).
  public static func forward(
    out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, causal: Bool, B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    let scale = 1 / Float(D).squareRoot()
    Parallel.forChunks(B * H) { _, pairs in
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let k = q + C, v = q + 2 * C
        let s = att + bh * T * T
        BLAS.sgemm(
          transB: true, m: T, n: T, k: D, alpha: scale, a: q, lda: 3 * C, b: k, ldb: 3 * C,
          beta: 0, c: s, ldc: T)
        for i in 0..<T {
          let row = s + i * T
          let n = causal ? i + 1 : T
          Softmax.inPlace(row, n)
          if n < T { (row + n).update(repeating: 0, count: T - n) }
        }
        BLAS.sgemm(
          m: T, n: D, k: T, a: s, lda: T, b: v, ldb: 3 * C, beta: 0,
          c: out + b * T * C + h * D, ldc: C)
      }
    }
  }

  /// dqkv (B, T, 3C) = (overwritten) from dout (B, T, C), given qkv and the saved att (B, H, T, T).
  /// `scratch` holds Parallel.threads * T * T floats (dP for the pairs a thread works on).
  public static func backward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    att: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, causal: Bool,
    B: Int, T: Int, C: Int, H: Int
  ) {
    let D = C / H
    let scale = 1 / Float(D).squareRoot()
    Parallel.forChunks(B * H) { chunk, pairs in
      let dp = scratch + chunk * T * T
      for bh in pairs {
        let b = bh / H, h = bh % H
        let q = qkv + b * T * 3 * C + h * D
        let k = q + C, v = q + 2 * C
        let dq = dqkv + b * T * 3 * C + h * D
        let dk = dq + C, dv = dq + 2 * C
        let p = att + bh * T * T
        let dO = dout + b * T * C + h * D
        // dP (T, T) = dO (T, D) @ V^T ; dV (T, D) = P^T @ dO
        BLAS.sgemm(
          transB: true, m: T, n: T, k: D, a: dO, lda: C, b: v, ldb: 3 * C, beta: 0, c: dp, ldc: T)
        BLAS.sgemm(
          transA: true, m: T, n: D, k: T, a: p, lda: T, b: dO, ldb: C, beta: 0, c: dv, ldc: 3 * C)
        // dS = P * (dP - sum_j dP * P), in place in dP (masked entries have P = 0, so dS = 0).
        for i in 0..<T {
          let pr = p + i * T, dr = dp + i * T
          let n = causal ? i + 1 : T
          let dotp = FastMath.dot(pr, dr, n)
          for j in 0..<n { dr[j] = pr[j] * (dr[j] - dotp) }
          if n < T { (dr + n).update(repeating: 0, count: T - n) }
        }
        // dQ = scale * dS @ K ; dK = scale * dS^T @ Q
        BLAS.sgemm(
          m: T, n: D, k: T, alpha: scale, a: dp, lda: T, b: k, ldb: 3 * C, beta: 0, c: dq,
          ldc: 3 * C)
        BLAS.sgemm(
          transA: true, m: T, n: D, k: T, alpha: scale, a: dp, lda: T, b: q, ldb: 3 * C, beta: 0,
          c: dk, ldc: 3 * C)
      }
    }
  }
}
