/// Nearest palette colour per pixel (squared Euclidean distance, lowest index on ties), the
/// quantiser's inner loop: over raw buffers whose sizes the caller (Quantizer) has set up, so it
/// runs without Swift's runtime checks, as the other kernels do.
public enum NearestColour {
  /// out[i] (n) = the index of the colour nearest pixel i of `pixels` (n x c), from colour planes
  /// `planes` (c x kp, kp a multiple of 16; padding colours far away). Threads split the pixels.
  public static func assign(
    _ pixels: UnsafePointer<Float>, count n: Int, channels c: Int, planes: UnsafePointer<Float>, paddedColours kp: Int,
    into out: UnsafeMutablePointer<UInt16>
  ) {
    Parallel.forChunks(n, align: 64) { _, range in
      typealias V = FastMath.V
      let lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
      for i in range {
        var bestD = V(repeating: .infinity)
        var bestJ = SIMD16<Int32>(repeating: 0)
        var j = 0
        while j < kp {
          var d = V()
          for ch in 0..<c {
            let diff = FastMath.load(planes + ch * kp + j) - V(repeating: pixels[i * c + ch])
            d += diff * diff
          }
          let better = d .< bestD
          bestD = bestD.replacing(with: d, where: better)
          bestJ = bestJ.replacing(with: lane &+ Int32(j), where: better)
          j += 16
        }
        // across lanes: smallest distance, then smallest index
        var m = bestD[0], idx = bestJ[0]
        for l in 1..<16 where bestD[l] < m || (bestD[l] == m && bestJ[l] < idx) {
          m = bestD[l]
          idx = bestJ[l]
        }
        out[i] = UInt16(idx)
      }
    }
  }
}
