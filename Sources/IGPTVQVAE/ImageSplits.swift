import Foundation
import IGPTData
import IGPTKernels

/// A dataset's images at one resolution as floats in [-0.5, 0.5] (pixel / 255 - 0.5, resized
/// as `igpt prepare` resizes), split by split: what a VQ-VAE trains and is evaluated on.
/// Splits as in a token store: train and test as the source has them, val shipped or carved
/// out of train with `Preparation.carve` (the same images `prepare` carves with the same seed).
public struct ImageSplits: Sendable {
  public let resolution: Int
  public let channels: Int
  /// Split name to (count * R * R * C) floats.
  public let images: [String: [Float]]
  public let labels: [String: [Int32]]
  public let source: String

  public var floatsPerImage: Int { resolution * resolution * channels }

  public func count(_ split: String) -> Int { (images[split]?.count ?? 0) / floatsPerImage }

  /// Reads `dataset` (any format prepare reads) and resizes every split; progress(done, total) while reading.
  public static func load(dataset: String, resolution: Int, crop: Bool, valFraction: Double, seed: UInt64,
                          progress: @escaping (Int, Int) -> Void = { _, _ in }) throws -> ImageSplits {
    let source = try DatasetLoader.load(dataset) { progress($0, $1) }
    func resized(_ set: ImageSet) -> [Float] {
      Resize.images(set, to: resolution, crop: crop).map { $0 * 0.5 }  // [-1, 1] -> [-0.5, 0.5]
    }
    let per = resolution * resolution * source.train.channels
    let train = resized(source.train)
    var images: [String: [Float]] = [:], labels: [String: [Int32]] = [:]
    func pick(_ all: [Float], _ allLabels: [Int32], _ indices: [Int]) -> ([Float], [Int32]) {
      var out = [Float](repeating: 0, count: indices.count * per)
      for (j, i) in indices.enumerated() { out.replaceSubrange((j * per)..<((j + 1) * per), with: all[(i * per)..<((i + 1) * per)]) }
      return (out, allLabels.isEmpty ? [] : indices.map { allLabels[$0] })
    }
    if let v = source.val {
      images["train"] = train
      labels["train"] = source.train.labels
      images["val"] = resized(v)
      labels["val"] = v.labels
    } else {
      let (t, v) = Preparation.carve(count: source.train.count, valFraction: valFraction, seed: seed)
      (images["train"], labels["train"]) = pick(train, source.train.labels, t)
      if !v.isEmpty { (images["val"], labels["val"]) = pick(train, source.train.labels, v) }
    }
    if let t = source.test {
      images["test"] = resized(t)
      labels["test"] = t.labels
    }
    guard (images["train"]?.count ?? 0) > 0 else { throw DataError.file(dataset, "has no train images") }
    return ImageSplits(resolution: resolution, channels: source.train.channels, images: images, labels: labels,
                       source: DatasetLoader.resolve(dataset))
  }

  /// The variance of a split's pixel values (Double sums in order): the scale the
  /// reconstruction loss is divided by.
  public func variance(_ split: String) -> Double {
    let x = images[split] ?? []
    guard !x.isEmpty else { return 1 }
    var s = 0.0, s2 = 0.0
    for v in x {
      s += Double(v)
      s2 += Double(v) * Double(v)
    }
    let n = Double(x.count)
    return max(s2 / n - (s / n) * (s / n), 1e-6)
  }
}
