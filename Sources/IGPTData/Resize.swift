import IGPTKernels

/// Shrinks images to the input resolution by area (box) averaging, with an optional centre crop.
///
/// Each output pixel is the mean of the source area it covers, pixels weighted by overlap; when
/// the size divides exactly this is the plain mean of a k x k block. Works channel by channel.
public enum Resize {
  /// Weights of source indices for each of `outSize` outputs covering `inSize` inputs.
  static func taps(inSize: Int, outSize: Int) -> [[(index: Int, weight: Float)]] {
    let scale = Double(inSize) / Double(outSize)
    return (0..<outSize).map { o in
      let lo = Double(o) * scale, hi = Double(o + 1) * scale
      var out: [(Int, Float)] = []
      var i = Int(lo)
      while Double(i) < hi && i < inSize {
        let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
        if overlap > 1e-12 { out.append((i, Float(overlap / scale))) }
        i += 1
      }
      return out
    }
  }

  /// The square (offset x, offset y, side) of a centre crop of a width x height image.
  public static func centreSquare(width: Int, height: Int) -> (x: Int, y: Int, side: Int) {
    let side = min(width, height)
    return ((width - side) / 2, (height - side) / 2, side)
  }

  /// Resizes one image (h, w, c) of bytes to (out, out, c) floats in [-1, 1] (x / 127.5 - 1).
  /// `crop` takes the centre square first; otherwise the aspect ratio is not kept.
  public static func image(
    _ src: UnsafePointer<UInt8>, width: Int, height: Int, channels c: Int, to out: Int, crop: Bool,
    into dst: UnsafeMutablePointer<Float>, xTaps: [[(index: Int, weight: Float)]], yTaps: [[(index: Int, weight: Float)]]
  ) {
    let (ox, oy, _) = crop ? centreSquare(width: width, height: height) : (0, 0, 0)
    for y in 0..<out {
      for x in 0..<out {
        for ch in 0..<c {
          var acc: Float = 0
          for ty in yTaps[y] {
            let row = src + ((oy + ty.index) * width + ox) * c + ch
            var racc: Float = 0
            for tx in xTaps[x] { racc += Float(row[tx.index * c]) * tx.weight }
            acc += racc * ty.weight
          }
          dst[(y * out + x) * c + ch] = acc / 127.5 - 1
        }
      }
    }
  }

  /// Every image of a set resized to (out, out, c) floats in [-1, 1], in parallel.
  public static func images(_ set: ImageSet, to out: Int, crop: Bool) -> [Float] {
    let w = crop ? min(set.width, set.height) : set.width
    let h = crop ? min(set.width, set.height) : set.height
    let xTaps = taps(inSize: w, outSize: out), yTaps = taps(inSize: h, outSize: out)
    let per = out * out * set.channels
    var result = [Float](repeating: 0, count: set.count * per)
    set.pixels.withUnsafeBufferPointer { src in
      result.withUnsafeMutableBufferPointer { dst in
        Parallel.forChunks(set.count) { _, range in
          for i in range {
            image(src.baseAddress! + i * set.bytesPerImage, width: set.width, height: set.height,
                  channels: set.channels, to: out, crop: crop, into: dst.baseAddress! + i * per,
                  xTaps: xTaps, yTaps: yTaps)
          }
        }
      }
    }
    return result
  }
}

