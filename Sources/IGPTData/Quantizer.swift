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
          guard n > 0 else { return }
          NearestColour.assign(px.baseAddress!, count: n, channels: c, planes: pl.baseAddress!, paddedColours: kp, into: o.baseAddress!)
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
