import Foundation
import IGPTKernels

/// The linear-probe protocol: standardise on train, fit logistic regression for each L2
/// strength of a grid (strongest first, warm-started), keep the one with the best held-out
/// accuracy, and report train / val / test accuracy. When the best strength is at an end of the
/// grid, the grid grows past that end (down to no penalty at all, up to `strongestL2`) until the
/// choice is inside it.
public enum LinearProbe {
  /// L2 strengths tried first, strongest first.
  public static let defaultGrid: [Double] = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6]
  /// How far the grid grows: below `weakestL2` comes 0 (no penalty), above `strongestL2` nothing.
  public static let weakestL2 = 1e-9
  public static let strongestL2 = 10.0
  /// L-BFGS iterations allowed per strength (each warm-started from the fit before it).
  public static let defaultMaxIterations = 300

  public struct Result: Codable, Sendable {
    /// "3", "2+3+4" (concatenated layers) or "pixels".
    public var features: String
    public var width: Int
    public var l2: Double
    public var trainAccuracy: Double
    public var valAccuracy: Double
    public var testAccuracy: Double
    public var iterations: Int
    public var seconds: Double
    /// Held-out accuracy for each L2 tried.
    public var grid: [String: Double]
    /// What the features are when that needs saying ("images decoded by the store's VQ-VAE").
    public var input: String? = nil
    /// Whether L-BFGS converged at the chosen L2 before its iteration limit, and the largest
    /// gradient component it ended at (nil in results written before these were kept).
    public var converged: Bool? = nil
    public var gradientMax: Double? = nil
  }

  /// The next strength past an end of the grid, on the 1-3-10 ladder: weaker (down to 0) or
  /// stronger (up to `strongestL2`); nil past the limits.
  public static func beyond(_ l2: Double, weaker: Bool) -> Double? {
    if weaker {
      if l2 <= 0 { return nil }
      if l2 <= weakestL2 * 1.0001 { return 0 }
    } else if l2 >= strongestL2 * 0.9999 || l2 <= 0 {
      return nil
    }
    let e = Int((log10(l2) + 1e-9).rounded(.down)), one = abs(l2 / pow(10, Double(e)) - 1) < 0.01
    // 1e(e) -> 3e(e-1) weaker / 3e(e) stronger; 3e(e) -> 1e(e) weaker / 1e(e+1) stronger
    let text = weaker ? (one ? "3e\(e - 1)" : "1e\(e)") : (one ? "3e\(e)" : "1e\(e + 1)")
    return Double(text)
  }

  /// The strength to try next when the best of `tried` (strongest first) is at one of its ends,
  /// and whether it is the weaker end; nil when the best is inside or the ladder ends.
  public static func nextStrength(tried: [Double], best: Double) -> (Double, weaker: Bool)? {
    if best == tried.last, let l2 = beyond(best, weaker: true) { return (l2, true) }
    if best == tried.first, tried.count > 1 || beyond(best, weaker: true) == nil, let l2 = beyond(best, weaker: false) { return (l2, false) }
    return nil
  }

  /// A fitted probe: its result and the classifier it chose, in the features' own units (the
  /// standardisation folded in), so that a fine-tuning head can start from it.
  public struct Fit: Sendable {
    public var result: Result
    /// (width, classes) row-major, and (classes): logits = x weights + bias on raw features.
    public var weights: [Float]
    public var bias: [Float]
  }

  public static func evaluate(_ name: String, train: FeatureSet, val: FeatureSet, test: FeatureSet,
                              grid: [Double] = defaultGrid, maxIterations: Int = defaultMaxIterations) -> Result {
    fit(name, train: train, val: val, test: test, grid: grid, maxIterations: maxIterations).result
  }

  /// `evaluate`, keeping the chosen classifier.
  public static func fit(_ name: String, train: FeatureSet, val: FeatureSet, test: FeatureSet,
                         grid: [Double] = defaultGrid, maxIterations: Int = defaultMaxIterations) -> Fit {
    let start = Date()
    let (mean, std) = train.moments()
    let tr = train.standardized(mean: mean, std: std)
    let va = val.standardized(mean: mean, std: std)
    let te = test.standardized(mean: mean, std: std)
    let classes = max(train.classes, val.classes, test.classes)
    var model = LogisticRegression(width: train.width, classes: classes)
    var best: (l2: Double, acc: Double, model: LogisticRegression)?
    var scores: [String: Double] = [:]
    var iterations = 0
    func fit(_ l2: Double) {
      model.fit(tr, l2: l2, maxIterations: maxIterations)
      iterations += model.iterations
      let acc = model.accuracy(va)
      scores[String(l2)] = acc
      if best == nil || acc > best!.acc { best = (l2, acc, model) }
    }
    // the given grid, strongest first, each fit warm-started from the one before; then past an
    // end while the best sits there, warm-started from that end's fit
    var tried = grid
    var strongest: LogisticRegression?
    for l2 in grid {
      fit(l2)
      if strongest == nil { strongest = model }
    }
    var weakest = model
    while let (next, weaker) = nextStrength(tried: tried, best: best!.l2) {
      model = weaker ? weakest : strongest!
      fit(next)
      if weaker {
        tried.append(next)
        weakest = model
      } else {
        tried.insert(next, at: 0)
        strongest = model
      }
    }
    let m = best!.model
    let result = Result(features: name, width: train.width, l2: best!.l2, trainAccuracy: m.accuracy(tr), valAccuracy: best!.acc,
                        testAccuracy: m.accuracy(te), iterations: iterations, seconds: Date().timeIntervalSince(start), grid: scores,
                        converged: m.converged, gradientMax: m.gradientMax)
    // ((x - mean) / std) W + b = x (W / std) + (b - sum_c mean_c / std_c W_c)
    let K = classes
    var weights = m.weights, bias = m.bias
    for c in 0..<train.width {
      for k in 0..<K {
        weights[c * K + k] = m.weights[c * K + k] / std[c]
        bias[k] -= mean[c] * weights[c * K + k]
      }
    }
    return Fit(result: result, weights: weights, bias: bias)
  }

  /// `perClass` seeded indices of each class (the low-data setting), in index order.
  public static func labelsPerClass(_ labels: [Int], perClass: Int, seed: UInt64) -> [Int] {
    var rng = SeededRandom(seed: seed)
    var byClass: [Int: [Int]] = [:]
    for (i, y) in labels.enumerated() { byClass[y, default: []].append(i) }
    var chosen: [Int] = []
    for y in byClass.keys.sorted() {
      var pool = byClass[y]!
      for i in stride(from: pool.count - 1, to: 0, by: -1) { pool.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
      chosen += pool.prefix(perClass)
    }
    return chosen.sorted()
  }

  /// The layers a --layers argument names: "all", "mid" (the middle third) or a list "1,4,7".
  public static func parseLayers(_ text: String, modelLayers L: Int) throws -> [Int] {
    switch text {
    case "all": return Array(0...L)
    case "mid": return Array((L / 3)...max(L / 3, (2 * L) / 3))
    default:
      let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
      guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && (0...L).contains($0!) }) else {
        throw ProbeError("--layers \(text): expected all, mid, or a list of layers in 0...\(L)")
      }
      return parts.map { $0! }
    }
  }
}

/// A probe that cannot run, with a one-line reason.
public struct ProbeError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
