/// A per-channel bias over rows of C channels, forward and backward.
public enum Bias {
  /// out (N, C) += b (C).
  public static func forward(out: UnsafeMutablePointer<Float>, b: UnsafePointer<Float>, N: Int, C: Int) {
    Parallel.forChunks(N) { _, rows in
      for n in rows {
        let o = out + n * C
        for c in 0..<C { o[c] += b[c] }
      }
    }
  }

  /// db (C) += the column sums of dout (N, C), each summed over rows in order. Threads split
  /// the columns (whole 16-column groups), so the bytes do not depend on the thread count.
  public static func backward(db: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int, C: Int) {
    Parallel.forChunks(C, align: 16) { _, cols in
      var acc = [Float](repeating: 0, count: cols.count)
      acc.withUnsafeMutableBufferPointer { a in
        for n in 0..<N {
          let row = dout + n * C + cols.lowerBound
          for j in 0..<cols.count { a[j] += row[j] }
        }
        for j in 0..<cols.count { db[cols.lowerBound + j] += a[j] }
      }
    }
  }
}
