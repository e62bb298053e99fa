/// Dense layers without bias (Conv1D layout, weight stored (in, out): y = x @ W), forward and backward.
public enum Matmul {
  /// out (N, OC) = inp (N, C) @ w (C, OC). Threads split the rows.
  public static func forward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    N: Int, C: Int, OC: Int
  ) {
    Parallel.forChunks(N, align: 16) { _, rows in
      BLAS.sgemm(
        m: rows.count, n: OC, k: C, a: inp + rows.lowerBound * C, lda: C, b: w, ldb: OC,
        beta: 0, c: out + rows.lowerBound * OC, ldc: OC)
    }
  }

  /// dinp (N, C) = dout @ w^T (overwritten) and dw (C, OC) += inp^T @ dout (accumulated, so
  /// microbatches sum). Threads split dinp's rows, then dw's columns: no element has two writers.
  public static func backward(
    dinp: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    N: Int, C: Int, OC: Int
  ) {
    if Parallel.threads == 2 {
      // Two threads: one computes dinp, the other dw. The two products have the same FLOPs,
      // and each runs unsplit (no operand packed twice): measured faster than splitting both.
      Parallel.forChunks(2) { chunk, _ in
        if chunk == 0 {
          BLAS.sgemm(transB: true, m: N, n: C, k: OC, a: dout, lda: OC, b: w, ldb: OC, beta: 0,
                     c: dinp, ldc: C)
        } else {
          BLAS.sgemm(transA: true, m: C, n: OC, k: N, a: inp, lda: C, b: dout, ldb: OC, beta: 1,
                     c: dw, ldc: OC)
        }
      }
      return
    }
    Parallel.forChunks(N, align: 16) { _, rows in
      BLAS.sgemm(
        transB: true, m: rows.count, n: C, k: OC, a: dout + rows.lowerBound * OC, lda: OC,
        b: w, ldb: OC, beta: 0, c: dinp + rows.lowerBound * C, ldc: C)
    }
    weightGradient(dw: dw, dout: dout, inp: inp, N: N, C: C, OC: OC)
  }

  /// dw (C, OC) += inp (N, C)^T @ dout (N, OC) only (for layers whose input needs no gradient).
  public static func weightGradient(
    dw: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
    N: Int, C: Int, OC: Int
  ) {
    if OC >= 64 {
      Parallel.forChunks(OC, align: 16) { _, cols in
        BLAS.sgemm(
          transA: true, m: C, n: cols.count, k: N, a: inp, lda: C, b: dout + cols.lowerBound,
          ldb: OC, beta: 1, c: dw + cols.lowerBound, ldc: OC)
      }
    } else {
      Parallel.forChunks(C, align: 16) { _, rows in
        BLAS.sgemm(
          transA: true, m: rows.count, n: OC, k: N, a: inp + rows.lowerBound, lda: C, b: dout,
          ldb: OC, beta: 1, c: dw + rows.lowerBound * OC, ldc: OC)
      }
    }
  }
}
