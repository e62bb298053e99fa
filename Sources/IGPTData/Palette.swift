import Foundation
import IGPTKernels
import IGPTModel

/// A colour palette: k colours of 1 (grey) or 3 (RGB) channels in [-1, 1]; token i is colour i.
public struct Palette: Equatable, Sendable {
  public let count: Int
  public let channels: Int
  /// count * channels values, colour-major.
  public let colors: [Float]

  public init(colors: [Float], channels: Int) throws {
    guard channels == 1 || channels == 3 else { throw DataError("a palette has 1 or 3 channels, not \(channels)") }
    guard colors.count % channels == 0 else { throw DataError("palette values do not divide into \(channels) channels") }
    let k = colors.count / channels
    guard (2...65_536).contains(k) else { throw DataError("a palette has 2 to 65536 colours, not \(k)") }
    self.count = k
    self.channels = channels
    self.colors = colors
  }

  /// Bytes per token in a shard: 1 up to 256 colours, else 2.
  public var tokenBytes: Int { TokenShard.tokenBytes(vocab: count) }

  // MARK: - k-means

  /// k-means over pixels (n * channels floats in [-1, 1]): k-means++ initialisation, then Lloyd
  /// iterations until no assignment changes (or `iterations`). An empty cluster takes the point
  /// farthest from its centre. Deterministic for a seed: every sum runs in a fixed order.
  public static func kmeans(
    pixels: [Float], channels c: Int, k: Int, seed: UInt64, iterations: Int = 30,
    progress: ((Int, Int) -> Void)? = nil
  ) throws -> Palette {
    guard (2...65_536).contains(k) else { throw DataError("--palette must be between 2 and 65536 (got \(k))") }
    let n = pixels.count / c
    guard n >= k else { throw DataError("\(n) sample pixels are too few for \(k) colours") }
    var rng = SeededRandom(seed: seed)
    // k-means++: each next centre drawn with probability proportional to squared distance.
    var centers = [Float](repeating: 0, count: k * c)
    var nearest = [Float](repeating: .infinity, count: n)
    var pick = Int(rng.next() % UInt64(n))
    for j in 0..<k {
      for ch in 0..<c { centers[j * c + ch] = pixels[pick * c + ch] }
      var total = 0.0
      pixels.withUnsafeBufferPointer { px in
        nearest.withUnsafeMutableBufferPointer { d in
          let center = Array(centers[(j * c)..<(j * c + c)])
          for i in 0..<n {
            var dist: Float = 0
            for ch in 0..<c {
              let diff = px[i * c + ch] - center[ch]
              dist += diff * diff
            }
            if dist < d[i] { d[i] = dist }
            total += Double(d[i])
          }
        }
      }
      if j == k - 1 { break }
      if total <= 0 {
        pick = Int(rng.next() % UInt64(n))  // fewer distinct colours than k: duplicates, fixed below
      } else {
        let target = rng.uniform() * total
        var acc = 0.0
        pick = n - 1
        for i in 0..<n {
          acc += Double(nearest[i])
          if acc > target { pick = i; break }
        }
      }
      if j % 64 == 0 { progress?(j, k + iterations * 64) }
    }
    var palette = try Palette(colors: centers, channels: c)
    var assignment = [UInt16](repeating: 0, count: n)
    var previous: [UInt16]? = nil
    for it in 0..<iterations {
      assignment = Quantizer.nearest(pixels, palette: palette)
      if assignment == previous { break }
      previous = assignment
      var sums = [Double](repeating: 0, count: k * c)
      var counts = [Int](repeating: 0, count: k)
      for i in 0..<n {
        let a = Int(assignment[i])
        counts[a] += 1
        for ch in 0..<c { sums[a * c + ch] += Double(pixels[i * c + ch]) }
      }
      var next = palette.colors
      var taken = Set<Int>()
      for j in 0..<k {
        if counts[j] > 0 {
          for ch in 0..<c { next[j * c + ch] = Float(sums[j * c + ch] / Double(counts[j])) }
        } else {
          // empty cluster: move it to the pixel farthest from its colour (lowest index on ties)
          var best = -1
          var bestDist: Float = -1
          for i in 0..<n where !taken.contains(i) {
            let a = Int(assignment[i])
            var dist: Float = 0
            for ch in 0..<c {
              let diff = pixels[i * c + ch] - palette.colors[a * c + ch]
              dist += diff * diff
            }
            if dist > bestDist { bestDist = dist; best = i }
          }
          taken.insert(best)
          for ch in 0..<c { next[j * c + ch] = pixels[best * c + ch] }
        }
      }
      palette = try Palette(colors: next, channels: c)
      progress?(k + (it + 1) * 64, k + iterations * 64)
    }
    return palette
  }

  // MARK: - .npy (OpenAI's kmeans_centers.npy layout: float (k, channels) in [-1, 1])

  /// The palette as a .npy file of float32, shape (k, channels).
  public func npy() -> Data { Npy.encode(float32: colors, shape: [count, channels]) }

  /// A palette from a .npy file (OpenAI's layout), a Hugging Face ImageGPT
  /// preprocessor_config.json (its `clusters`), or a HF model directory holding one.
  public static func load(from path: String) throws -> Palette {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
      let file = (path as NSString).appendingPathComponent("preprocessor_config.json")
      return try HFImageProcessorConfig.load(file).palette(name: file)
    }
    if path.hasSuffix(".json") { return try HFImageProcessorConfig.load(path).palette(name: path) }
    return try load(npy: path)
  }

  /// A palette from a .npy file of shape (k, 3) or (k, 1), float32 or float64.
  public static func load(npy path: String) throws -> Palette {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw DataError.file(path, "cannot be read (missing or not a file)")
    }
    let array: Npy.FloatArray
    do { array = try Npy.decodeFloats(data) } catch {
      throw DataError.file(path, "\(error)")
    }
    guard array.shape.count == 2, array.shape[1] == 1 || array.shape[1] == 3 else {
      throw DataError.file(path, "palette shape \(array.shape) is not (k, 3) or (k, 1)")
    }
    guard (2...65_536).contains(array.shape[0]) else {
      throw DataError.file(path, "palette has \(array.shape[0]) colours; 2 to 65536 are allowed")
    }
    guard array.values.allSatisfy({ $0.isFinite && abs($0) <= 1.0001 }) else {
      throw DataError.file(path, "palette values must be finite and in [-1, 1]")
    }
    return try Palette(colors: array.values, channels: array.shape[1])
  }
}
