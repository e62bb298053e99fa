/// One probe evaluation, as `igpt probe run` and cluster probe jobs both report it: a probe per
/// chosen layer, then the concatenation of K layers centred on the best of them, then the same
/// solver on raw pixels (the floor features must beat).
public enum ProbeSweep {
  /// Features of one kind for the three splits.
  public struct Splits {
    public var train: FeatureSet
    public var val: FeatureSet
    public var test: FeatureSet
    /// What the features are when that needs saying (the raw-pixel baseline of a latent
    /// store: images its VQ-VAE decoded); copied into the result.
    public var input: String?
    public init(train: FeatureSet, val: FeatureSet, test: FeatureSet, input: String? = nil) {
      self.train = train
      self.val = val
      self.test = test
      self.input = input
    }
  }

  /// Fits every probe in report order, calling `fitted` after each; `layer(l)` gives the
  /// features of layer l (0...modelLayers).
  public static func run(
    layers: [Int], modelLayers: Int, layer: (Int) -> Splits, concat: Int = 0, pixels: Splits? = nil,
    maxIterations: Int = LinearProbe.defaultMaxIterations, fitted: (LinearProbe.Result) -> Void = { _ in }
  ) -> [LinearProbe.Result] {
    var results: [LinearProbe.Result] = []
    func probe(_ name: String, _ s: Splits) {
      var r = LinearProbe.evaluate(name, train: s.train, val: s.val, test: s.test, maxIterations: maxIterations)
      r.input = s.input
      fitted(r)
      results.append(r)
    }
    for l in layers { probe("\(l)", layer(l)) }
    if concat > 1, let best = bestLayer(results), let b = Int(best.features) {
      let range = concatLayers(best: b, concat: concat, modelLayers: modelLayers)
      let sets = range.map(layer)
      probe(range.map(String.init).joined(separator: "+"),
            Splits(train: .concatenate(sets.map(\.train)), val: .concatenate(sets.map(\.val)),
                   test: .concatenate(sets.map(\.test))))
    }
    if let pixels { probe("pixels", pixels) }
    return results
  }

  /// The `concat` layers centred on `best` (shifted to stay inside 0...modelLayers).
  public static func concatLayers(best b: Int, concat: Int, modelLayers: Int) -> ClosedRange<Int> {
    let k = min(max(concat, 1), modelLayers + 1)
    let lo = max(0, min(b - (k - 1) / 2, modelLayers + 1 - k))
    return lo...(lo + k - 1)
  }

  /// The deepest layer a sweep of `layers` (plus its concatenation) can read: feature passes
  /// stop there, whichever layer turns out best.
  public static func deepestLayer(layers: [Int], modelLayers: Int, concat: Int) -> Int {
    let top = layers.max() ?? modelLayers
    guard concat > 1 else { return top }
    return layers.map { concatLayers(best: $0, concat: concat, modelLayers: modelLayers).upperBound }.reduce(top, max)
  }

  /// The best single-layer result, by held-out (val) accuracy.
  public static func bestLayer(_ results: [LinearProbe.Result]) -> LinearProbe.Result? {
    results.filter { Int($0.features) != nil }.max { $0.valAccuracy < $1.valAccuracy }
  }
}
