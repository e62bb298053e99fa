import IGPTKernels

/// Maps pixels to their nearest palette colour (squared Euclidean distance, lowest index on
/// ties) and tokens back to pixel bytes.
public enum Quantizer {
  /// Token per pixel for pixels (n * channels floats in [-1, 1]), in parallel.
  public static func nearest(_ pixels: [Float], palette: Palette) -> [UInt16] {
    let c = palette.channels, k = palette.count
    let n = pixels.count / c
    // colour planes padded to 16 lanes; padding colours sit far away so they never win
    let kp = (k + 15) / 16 * 16
    var planes = [Float](repeating: 1e9, count: c * kp)
    for j in 0..<k { for ch in 0..<c { planes[ch * kp + j] = palette.colors[j * c + ch] } }
    var out = [UInt16](repeating: 0, count: n)
    pixels.withUnsafeBufferPointer { px in
      planes.withUnsafeBufferPointer { pl in
        out.withUnsafeMutableBufferPointer { o in
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
                  let diff = FastMath.load(pl.baseAddress! + ch * kp + j) - V(repeating: px[i * c + ch])
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
              o[i] = UInt16(idx)
            }
          }
        }
      }
    }
    return out
  }

  /// Pixel bytes (n * channels) for tokens: round(127.5 * (colour + 1)) clamped to 0...255.
  public static func decode(_ tokens: [UInt16], palette: Palette) -> [UInt8] {
    let c = palette.channels
    var out = [UInt8](repeating: 0, count: tokens.count * c)
    for (i, t) in tokens.enumerated() {
      for ch in 0..<c {
        let v = (127.5 * (palette.colors[Int(t) * c + ch] + 1)).rounded()
        out[i * c + ch] = UInt8(max(0, min(255, v)))
      }
    }
    return out
  }
}
