/// Token + position embedding, forward and backward.
///
/// AR: position 0 gets the learned start-of-sequence vector, position t > 0 the embedding of
/// token t-1, so the output at t predicts token t. BERT: every position gets its own token's
/// embedding, or zero where masked (no mask token, no sos). `wpe[t]` is added everywhere.
public enum Encoder {
  /// out (B, T, C) = input embedding + wpe.
  /// tokens (B, T); wte (V, C); sos (C); wpe (>=T, C); mask (B, T) 1 = masked, or nil for AR.
  public static func forward(
    out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
    wte: UnsafePointer<Float>, sos: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
    mask: UnsafePointer<UInt8>?, B: Int, T: Int, C: Int
  ) {
    Parallel.forChunks(B * T) { _, rows in
      for bt in rows {
        let t = bt % T
        let o = out + bt * C
        let p = wpe + t * C
        if let mask {
          if mask[bt] != 0 {
            for i in 0..<C { o[i] = p[i] }
          } else {
            let e = wte + Int(tokens[bt]) * C
            for i in 0..<C { o[i] = e[i] + p[i] }
          }
        } else {
          let e = t == 0 ? sos : wte + Int(tokens[bt - 1]) * C
          for i in 0..<C { o[i] = e[i] + p[i] }
        }
      }
    }
  }

  /// dwte (V, C), dsos (C), dwpe (>=T, C) += from dout (B, T, C).
  /// Threads split the channels, so each gradient element is summed in token order by one thread.
  public static func backward(
    dwte: UnsafeMutablePointer<Float>, dsos: UnsafeMutablePointer<Float>,
    dwpe: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
    mask: UnsafePointer<UInt8>?, B: Int, T: Int, C: Int
  ) {
    Parallel.forChunks(C, align: 16) { _, cols in
      for b in 0..<B {
        for t in 0..<T {
          let bt = b * T + t
          let d = dout + bt * C
          let p = dwpe + t * C
          for i in cols { p[i] += d[i] }
          let e: UnsafeMutablePointer<Float>?
          if let mask {
            e = mask[bt] != 0 ? nil : dwte + Int(tokens[bt]) * C
          } else {
            e = t == 0 ? dsos : dwte + Int(tokens[bt - 1]) * C
          }
          if let e { for i in cols { e[i] += d[i] } }
        }
      }
    }
  }
}
