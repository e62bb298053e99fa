/// The output head: logits = x @ wtet^T with wtet stored (V, C) (untied from wte), forward and backward.
public enum Head {
  /// logits (N, V) = x (N, C) @ w (V, C)^T.
  public static func forward(
    logits: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    N: Int, C: Int, V: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, rows in
      BLAS.sgemm(
        transB: true, m: rows.count, n: V, k: C, a: x + rows.lowerBound * C, lda: C, b: w, ldb: C,
        beta: 0, c: logits + rows.lowerBound * V, ldc: V)
    }
  }

  /// dx (N, C) += dlogits @ w ; dw (V, C) += dlogits^T @ x.
  public static func backward(
    dx: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>,
    dlogits: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    N: Int, C: Int, V: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, rows in
      BLAS.sgemm(
        m: rows.count, n: C, k: V, a: dlogits + rows.lowerBound * V, lda: V, b: w, ldb: C,
        beta: 1, c: dx + rows.lowerBound * C, ldc: C)
    }
    Parallel.forChunks(C, align: 16) { _, cols in
      BLAS.sgemm(
        transA: true, m: V, n: cols.count, k: N, a: dlogits, lda: V, b: x + cols.lowerBound,
        ldb: C, beta: 1, c: dw + cols.lowerBound, ldc: C)
    }
  }
}
