import Dispatch

/// Measures what sgemm alone reaches on this machine, the ceiling the model's speed is judged by.
public enum SgemmCeiling {
  /// Best GFLOP/s of a 1024^3 sgemm over `repeats` tries, both split across igpt's threads
  /// (single-threaded OpenBLAS per thread, as the kernels run) and with OpenBLAS's own threading.
  public static func measure(threads: Int, size n: Int = 1024, repeats: Int = 5) -> Double {
    let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    var rng = SeededRandom(seed: 7)
    for i in 0..<(n * n) {
      a[i] = Float(rng.uniform()) - 0.5
      b[i] = Float(rng.uniform()) - 0.5
    }
    func best(_ body: () -> Void) -> Double {
      body()
      var bestSeconds = Double.infinity
      for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        bestSeconds = min(bestSeconds, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      }
      return 2 * Double(n * n * n) / bestSeconds / 1e9
    }
    let saved = Parallel.threads
    Parallel.threads = threads
    let split = best {
      Parallel.forChunks(n, align: 16) { _, rows in
        BLAS.sgemm(m: rows.count, n: n, k: n, a: a + rows.lowerBound * n, lda: n, b: b, ldb: n,
                   beta: 0, c: c + rows.lowerBound * n, ldc: n)
      }
    }
    Parallel.threads = saved
    BLAS.setThreads(threads)
    let native = best {
      BLAS.sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, beta: 0, c: c, ldc: n)
    }
    BLAS.setThreads(1)
    return max(split, native)
  }
}
