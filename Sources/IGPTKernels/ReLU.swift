/// max(x, 0), forward and backward.
public enum ReLU {
  /// out (N) = max(inp, 0); out may alias inp.
  public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    Parallel.forChunks(N, align: 16) { _, r in
      for i in r { out[i] = inp[i] > 0 ? inp[i] : 0 }
    }
  }

  /// dinp (N) = dout where out > 0, else 0 (from the forward's output: out > 0 exactly where
  /// inp > 0). dinp may alias dout.
  public static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>, N: Int) {
    Parallel.forChunks(N, align: 16) { _, r in
      for i in r { dinp[i] = out[i] > 0 ? dout[i] : 0 }
    }
  }
}
