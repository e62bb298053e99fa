import Foundation

/// A labelled design matrix: count rows of width features (row-major Float), one class per row.
public struct FeatureSet: Sendable {
  public var width: Int
  public var values: [Float]
  public var labels: [Int]

  public init(width: Int, values: [Float], labels: [Int]) {
    precondition(values.count == width * labels.count, "feature matrix does not match its labels")
    self.width = width
    self.values = values
    self.labels = labels
  }

  public var count: Int { labels.count }
  public var classes: Int { (labels.max() ?? -1) + 1 }

  /// The rows at the given indices.
  public func rows(_ indices: [Int]) -> FeatureSet {
    var v = [Float](repeating: 0, count: indices.count * width)
    for (i, r) in indices.enumerated() {
      for c in 0..<width { v[i * width + c] = values[r * width + c] }
    }
    return FeatureSet(width: width, values: v, labels: indices.map { labels[$0] })
  }

  /// Columns side by side: [a | b] (same rows).
  public static func concatenate(_ sets: [FeatureSet]) -> FeatureSet {
    let n = sets[0].count
    let width = sets.reduce(0) { $0 + $1.width }
    var v = [Float](repeating: 0, count: n * width)
    var offset = 0
    for s in sets {
      for r in 0..<n {
        for c in 0..<s.width { v[r * width + offset + c] = s.values[r * s.width + c] }
      }
      offset += s.width
    }
    return FeatureSet(width: width, values: v, labels: sets[0].labels)
  }

  /// Per-column mean and standard deviation (Double sums), for standardising.
  public func moments() -> (mean: [Float], std: [Float]) {
    var mean = [Double](repeating: 0, count: width), sq = [Double](repeating: 0, count: width)
    for r in 0..<count {
      for c in 0..<width {
        let x = Double(values[r * width + c])
        mean[c] += x
        sq[c] += x * x
      }
    }
    let n = Double(max(count, 1))
    let m = mean.map { $0 / n }
    let s = (0..<width).map { c in max(sq[c] / n - m[c] * m[c], 0).squareRoot() }
    return (m.map(Float.init), s.map { Float($0 > 1e-8 ? $0 : 1) })
  }

  /// (x - mean) / std, column by column.
  public func standardized(mean: [Float], std: [Float]) -> FeatureSet {
    var v = values
    for r in 0..<count {
      for c in 0..<width { v[r * width + c] = (v[r * width + c] - mean[c]) / std[c] }
    }
    return FeatureSet(width: width, values: v, labels: labels)
  }
}
