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
  /// Each image's index in its source split, and which source split that is.
  public let sourceIndices: [String: [Int32]]
  public let sourceSplits: [String: String]
  public let source: String
  /// The format that was read ("idx", "cifar10", "folder"...) and the class names.
  public let format: String
  public let classNames: [String]

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
    var indices: [String: [Int32]] = [:], from: [String: String] = [:]
    func pick(_ all: [Float], _ allLabels: [Int32], _ indices: [Int]) -> ([Float], [Int32]) {
      var out = [Float](repeating: 0, count: indices.count * per)
      for (j, i) in indices.enumerated() { out.replaceSubrange((j * per)..<((j + 1) * per), with: all[(i * per)..<((i + 1) * per)]) }
      return (out, allLabels.isEmpty ? [] : indices.map { allLabels[$0] })
    }
    func whole(_ name: String, _ set: ImageSet, _ floats: [Float]) {
      images[name] = floats
      labels[name] = set.labels
      indices[name] = (0..<set.count).map { Int32($0) }
      from[name] = name
    }
    if let v = source.val {
      whole("train", source.train, train)
      whole("val", v, resized(v))
    } else {
      let (t, v) = Preparation.carve(count: source.train.count, valFraction: valFraction, seed: seed)
      (images["train"], labels["train"]) = pick(train, source.train.labels, t)
      indices["train"] = t.map { Int32($0) }
      from["train"] = "train"
      if !v.isEmpty {
        (images["val"], labels["val"]) = pick(train, source.train.labels, v)
        indices["val"] = v.map { Int32($0) }
        from["val"] = "train"
      }
    }
    if let t = source.test { whole("test", t, resized(t)) }
    guard (images["train"]?.count ?? 0) > 0 else { throw DataError.file(dataset, "has no train images") }
    return ImageSplits(resolution: resolution, channels: source.train.channels, images: images, labels: labels,
                       sourceIndices: indices, sourceSplits: from, source: DatasetLoader.resolve(dataset), format: source.format,
                       classNames: source.classNames)
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
