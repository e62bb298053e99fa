import CBLAS

/// Row-major single-precision matrix products through OpenBLAS, and what OpenBLAS is running on.
///
/// igpt parallelises across its own threads (`Parallel`), so OpenBLAS itself is kept at one
/// thread: each of our threads calls `sgemm` on a disjoint block. That avoids OpenBLAS's
/// spinning worker threads competing with ours for the same two cores.
public enum BLAS {
  /// The kernel family OpenBLAS selected when it was loaded ("Haswell", "SkylakeX", "Prescott"...).
  public static var coreName: String {
    guard let name = openblas_get_corename() else { return "unknown" }
    return String(cString: name)
  }

  /// OpenBLAS's version and build options, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH
  /// NO_AFFINITY Haswell MAX_THREADS=64" (a DYNAMIC_ARCH build names its loaded core too).
  public static var config: String {
    guard let c = openblas_get_config() else { return "unknown" }
    return String(cString: c)
  }

  /// Sets OpenBLAS's own thread count (1 during training; the ceiling benchmark raises it).
  public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

  /// C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major.
  /// op(A) is (M, K): A is (M, K) with leading dimension lda, or (K, M) when transA.
  /// op(B) is (K, N): B is (K, N) with leading dimension ldb, or (N, K) when transB.
  @inline(always)
  public static func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
      blasint(ldc))
  }

  /// b (cols, rows) = a^T for a (rows, cols), leading dimensions lda and ldb: OpenBLAS's
  /// `somatcopy`, a plain copy (alpha 1). Swift's own loop for this compiled to AVX-512
  /// scatters, which made packing a fifth of attention's time.
  @inline(always)
  public static func transpose(
    rows: Int, cols: Int, a: UnsafePointer<Float>, lda: Int, into b: UnsafeMutablePointer<Float>, ldb: Int
  ) {
    if rows == 0 || cols == 0 { return }
    cblas_somatcopy(CblasRowMajor, CblasTrans, blasint(rows), blasint(cols), 1, a, blasint(lda), b, blasint(ldb))
  }
}
