import Foundation
import Testing

@testable import IGPTKernels
@testable import IGPTModel
@testable import IGPTProbe

@Suite struct ProbeTests {
  /// Gaussian blobs: class k has mean mu_k in the first `signal` dimensions, noise elsewhere.
  static func blobs(perClass: Int, classes: Int, width: Int, signal: Int, separation: Float, seed: UInt64) -> FeatureSet {
    var rng = SeededRandom(seed: seed)
    var means = [[Float]]()
    for _ in 0..<classes { means.append((0..<signal).map { _ in Float(rng.normal()) * separation }) }
    var values: [Float] = [], labels: [Int] = []
    for i in 0..<(perClass * classes) {
      let k = i % classes
      for d in 0..<width { values.append((d < signal ? means[k][d] : 0) + Float(rng.normal()) + 3) }
      labels.append(k)
    }
    return FeatureSet(width: width, values: values, labels: labels)
  }

  @Test func lbfgsFindsTheMinimumOfAQuadratic() {
    // f(x) = sum_i a_i (x_i - c_i)^2, minimum at c
    let a: [Double] = [1, 10, 100, 0.5], c: [Double] = [3, -2, 0.5, 7]
    let r = LBFGS().minimize(from: [0, 0, 0, 0]) { x, g in
      var v = 0.0
      for i in x.indices {
        v += a[i] * (x[i] - c[i]) * (x[i] - c[i])
        g[i] = 2 * a[i] * (x[i] - c[i])
      }
      return v
    }
    for i in c.indices { #expect(abs(r.x[i] - c[i]) < 1e-5) }
  }

  /// Plain gradient descent on the same objective, run long: an independent solver.
  static func gradientDescentProbabilities(_ d: FeatureSet, classes K: Int, l2: Double, steps: Int) -> [Double] {
    let D = d.width, N = d.count
    var w = [Double](repeating: 0, count: D * K), b = [Double](repeating: 0, count: K)
    func probs() -> [Double] {
      var p = [Double](repeating: 0, count: N * K)
      for i in 0..<N {
        var z = [Double](repeating: 0, count: K)
        for k in 0..<K {
          z[k] = b[k]
          for j in 0..<D { z[k] += Double(d.values[i * D + j]) * w[j * K + k] }
        }
        let m = z.max()!
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        for k in 0..<K { p[i * K + k] = e[k] / s }
      }
      return p
    }
    for _ in 0..<steps {
      let p = probs()
      var gw = w.map { l2 * $0 }, gb = [Double](repeating: 0, count: K)
      for i in 0..<N {
        for k in 0..<K {
          let r = (p[i * K + k] - (d.labels[i] == k ? 1 : 0)) / Double(N)
          gb[k] += r
          for j in 0..<D { gw[j * K + k] += Double(d.values[i * D + j]) * r }
        }
      }
      for i in w.indices { w[i] -= 0.5 * gw[i] }
      for k in 0..<K { b[k] -= 0.5 * gb[k] }
    }
    return probs()
  }

  @Test func logisticRegressionMatchesAnIndependentSolver() {
    let raw = Self.blobs(perClass: 20, classes: 3, width: 4, signal: 2, separation: 1, seed: 5)
    let (m, s) = raw.moments()
    let d = raw.standardized(mean: m, std: s)
    var model = LogisticRegression(width: 4, classes: 3)
    model.fit(d, l2: 0.05)
    let ours = model.probabilities(d)
    let reference = Self.gradientDescentProbabilities(d, classes: 3, l2: 0.05, steps: 6000)
    var worst = 0.0
    for i in ours.indices { worst = max(worst, abs(Double(ours[i]) - reference[i])) }
    #expect(worst < 2e-3, "largest probability difference \(worst)")
    #expect(model.iterations > 0)
  }

  @Test func logisticRegressionBytesDoNotDependOnTheThreads() {
    // 16 fixed row chunks summed in order: two threads and one give the same weights
    Parallel.threads = 2
    let d = Self.blobs(perClass: 40, classes: 3, width: 8, signal: 2, separation: 1, seed: 7)
    var two = LogisticRegression(width: 8, classes: 3), one = two
    two.fit(d, l2: 1e-3)
    Parallel.serially { one.fit(d, l2: 1e-3) }
    #expect(two.weights == one.weights && two.bias == one.bias && two.iterations == one.iterations)
  }

  @Test func aProbeOnPlantedSignalBeatsChanceByFar() {
    let all = Self.blobs(perClass: 150, classes: 4, width: 32, signal: 4, separation: 3, seed: 9)
    let idx = Array(0..<all.count)
    let train = all.rows(idx.filter { $0 % 3 == 0 }), val = all.rows(idx.filter { $0 % 3 == 1 }), test = all.rows(idx.filter { $0 % 3 == 2 })
    let r = LinearProbe.evaluate("toy", train: train, val: val, test: test)
    #expect(r.testAccuracy > 0.8, "\(r)")  // chance is 0.25
    #expect(LinearProbe.defaultGrid.allSatisfy { r.grid[String($0)] != nil }, "\(r.grid)")
    #expect(r.converged == true, "\(r)")
    // noise-only features stay near chance
    let noise = Self.blobs(perClass: 150, classes: 4, width: 32, signal: 0, separation: 0, seed: 10)
    let n = LinearProbe.evaluate("noise", train: noise.rows(idx.filter { $0 % 3 == 0 }), val: noise.rows(idx.filter { $0 % 3 == 1 }),
                                 test: noise.rows(idx.filter { $0 % 3 == 2 }))
    #expect(n.testAccuracy < 0.4, "\(n)")
  }

  /// The classifier `fit` keeps reads raw features (standardisation folded in): on features far
  /// from zero mean and unit scale it predicts the test images as the probe did.
  @Test func theFittedClassifierInRawUnitsPredictsAsTheProbe() {
    var all = Self.blobs(perClass: 150, classes: 4, width: 32, signal: 4, separation: 3, seed: 9)
    for i in 0..<all.values.count { all.values[i] = all.values[i] * Float(1 + i % 32) * 0.25 + 5 }
    let idx = Array(0..<all.count)
    let train = all.rows(idx.filter { $0 % 3 == 0 }), val = all.rows(idx.filter { $0 % 3 == 1 }), test = all.rows(idx.filter { $0 % 3 == 2 })
    let fit = LinearProbe.fit("toy", train: train, val: val, test: test)
    #expect(fit.result.testAccuracy > 0.8, "\(fit.result)")
    let K = 4, D = test.width
    var correct = 0
    for r in 0..<test.count {
      var z = fit.bias
      for d in 0..<D { for k in 0..<K { z[k] += test.values[r * D + d] * fit.weights[d * K + k] } }
      if z.firstIndex(of: z.max()!) == test.labels[r] { correct += 1 }
    }
    #expect(abs(Double(correct) / Double(test.count) - fit.result.testAccuracy) <= 1.0 / Double(test.count), "\(correct) of \(test.count)")
    #expect(LinearProbe.evaluate("toy", train: train, val: val, test: test).testAccuracy == fit.result.testAccuracy)
  }

  @Test func theL2LadderRunsOneThreeTenToTheLimits() {
    var weaker: [Double] = []
    var l2: Double? = 1e-6
    while let x = l2 { l2 = LinearProbe.beyond(x, weaker: true); if let l2 { weaker.append(l2) } }
    #expect(weaker == [3e-7, 1e-7, 3e-8, 1e-8, 3e-9, 1e-9, 0])
    var stronger: [Double] = []
    l2 = 1e-1
    while let x = l2 { l2 = LinearProbe.beyond(x, weaker: false); if let l2 { stronger.append(l2) } }
    #expect(stronger == [3e-1, 1, 3, 10])
    #expect(LinearProbe.beyond(3e-3, weaker: true) == 1e-3 && LinearProbe.beyond(3e-3, weaker: false) == 1e-2)
  }

  @Test func theGridGrowsOnlyPastTheEndTheBestSitsAt() {
    let grid = [1e-2, 1e-3, 1e-4]
    #expect(LinearProbe.nextStrength(tried: grid, best: 1e-3) == nil)
    #expect(LinearProbe.nextStrength(tried: grid, best: 1e-4).map { "\($0.0) \($0.weaker)" } == "3e-05 true")
    #expect(LinearProbe.nextStrength(tried: grid, best: 1e-2).map { "\($0.0) \($0.weaker)" } == "0.03 false")
    #expect(LinearProbe.nextStrength(tried: [1e-9, 0], best: 0) == nil)
    #expect(LinearProbe.nextStrength(tried: [10, 3], best: 10) == nil)
  }

  /// Two features that share a large noise, the class in their difference: a strong penalty
  /// keeps only the class means (in the first feature, drowned by the noise) and guesses; a
  /// grid of strong strengths alone must grow weaker until the choice is inside it.
  @Test func aGridOfStrengthsTooStrongGrowsWeakerUntilTheChoiceIsInside() {
    var rng = SeededRandom(seed: 4)
    func set(_ n: Int) -> FeatureSet {
      var values: [Float] = [], labels: [Int] = []
      for i in 0..<n {
        let y = i % 2, noise = Float(rng.normal() * 5)
        values += [Float(y * 2 - 1) * 0.5 + noise, noise]
        labels.append(y)
      }
      return FeatureSet(width: 2, values: values, labels: labels)
    }
    let r = LinearProbe.evaluate("shared-noise", train: set(400), val: set(200), test: set(200), grid: [1, 0.3])
    let tried = r.grid.keys.compactMap(Double.init).sorted()
    #expect(r.l2 < 0.3 && (r.l2 == 0 || tried.first! < r.l2), "\(r.grid)")
    #expect((r.grid[String(1.0)] ?? 1) < 0.8 && r.testAccuracy > 0.95, "\(r)")
    #expect(r.converged == true)
  }

  @Test func lowDataPicksNPerClassDeterministically() {
    let labels = (0..<100).map { $0 % 4 }
    let a = LinearProbe.labelsPerClass(labels, perClass: 5, seed: 1)
    #expect(a == LinearProbe.labelsPerClass(labels, perClass: 5, seed: 1))
    #expect(a != LinearProbe.labelsPerClass(labels, perClass: 5, seed: 2))
    for k in 0..<4 { #expect(a.filter { labels[$0] == k }.count == 5) }
  }

  @Test func layerListsParse() throws {
    #expect(try LinearProbe.parseLayers("all", modelLayers: 4) == [0, 1, 2, 3, 4])
    #expect(try LinearProbe.parseLayers("1,3", modelLayers: 4) == [1, 3])
    #expect(try LinearProbe.parseLayers("mid", modelLayers: 6) == [2, 3, 4])
    #expect(throws: ProbeError.self) { try LinearProbe.parseLayers("7", modelLayers: 4) }
  }

  /// An image's features are the bytes of its own pass, whatever batch it is in, however many
  /// threads share the batch, and wherever the pass stops: every case issues the same calls per
  /// image (sgemm with T rows), which holds on every kernel family.
  @Test func anImagesFeaturesDoNotDependOnItsBatchOrTheThreads() throws {
    Parallel.threads = 2
    for objective in [ModelConfig.Objective.ar, .bert] {
      let model = try IGPT(config: ModelConfig(layers: 3, embd: 32, heads: 2, seq: 49, vocab: 16, objective: objective))
      model.initialize(seed: 3)
      var rng = SeededRandom(seed: 4)
      model.perturbForTesting(rng: &rng)
      let B = 5, T = 49, C = 32
      let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % 16) }
      let mask = BERTMask.draw(B: B, T: T, rng: &rng)
      func pass(_ images: Range<Int>, through m: Int? = nil) -> [[Float]] {
        tokens.withUnsafeBufferPointer { t in
          mask.withUnsafeBufferPointer { k in
            model.allFeatures(tokens: t.baseAddress! + images.lowerBound * T, mask: objective == .bert ? k.baseAddress! + images.lowerBound * T : nil,
                              batch: images.count, through: m)
          }
        }
      }
      let all = pass(0..<B)
      #expect(all.count == 4 && all.allSatisfy { $0.count == B * C })
      #expect(Parallel.serially { pass(0..<B) } == all, "\(objective): one thread")
      // the same images in other batches: 0-1 and 2-4, and one at a time
      let parts = pass(0..<2).indices.map { l in pass(0..<2)[l] + pass(2..<B)[l] }
      #expect(parts == all, "\(objective): batches 2 + 3")
      for b in 0..<B {
        let alone = pass(b..<(b + 1))
        for l in 0...3 { #expect(alone[l] == Array(all[l][(b * C)..<((b + 1) * C)]), "\(objective): image \(b) layer \(l)") }
      }
      // a pass that stops at layer m gives the same bytes for layers 0...m and nothing past them
      for m in 0...3 {
        let upTo = pass(0..<B, through: m)
        #expect(upTo == Array(all[0...m]), "\(objective): through layer \(m)")
        let one = tokens.withUnsafeBufferPointer { t in
          mask.withUnsafeBufferPointer { k in model.features(tokens: t.baseAddress!, mask: objective == .bert ? k.baseAddress! : nil, batch: B, layer: m) }
        }
        #expect(one == all[m], "\(objective): layer \(m) alone")
      }
      // the whole batch in one split pass (bench --features-split) has other shapes: close, not equal
      let split = tokens.withUnsafeBufferPointer { t in
        mask.withUnsafeBufferPointer { k in
          model.allFeatures(tokens: t.baseAddress!, mask: objective == .bert ? k.baseAddress! : nil, batch: B, imageGroups: false)
        }
      }
      for l in 0...3 {
        let worst = zip(split[l], all[l]).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "\(objective) layer \(l): split pass differs by \(worst)")
      }
    }
  }

  /// BERT masks are drawn per image: the same for an image in any batch, different across
  /// images, passes, splits and seeds.
  @Test func maskOfAnImageDependsOnlyOnSeedSplitImageAndPass() {
    let T = 64
    let batch = FeatureExtractor.masks(seed: 7, split: "train", images: [3, 9, 4], pass: 1, T: T)
    #expect(batch.count == 3 * T)
    #expect(Array(batch[T..<(2 * T)]) == FeatureExtractor.masks(seed: 7, split: "train", images: [9], pass: 1, T: T))
    let nine = FeatureExtractor.masks(seed: 7, split: "train", images: [9], pass: 1, T: T)
    #expect(nine != FeatureExtractor.masks(seed: 7, split: "train", images: [9], pass: 0, T: T))
    #expect(nine != FeatureExtractor.masks(seed: 7, split: "test", images: [9], pass: 1, T: T))
    #expect(nine != FeatureExtractor.masks(seed: 8, split: "train", images: [9], pass: 1, T: T))
    #expect(nine != FeatureExtractor.masks(seed: 7, split: "train", images: [10], pass: 1, T: T))
    let masked = batch.filter { $0 == 1 }.count
    #expect(masked > 3 * T / 20 && masked < 3 * T / 4, "about 15% masked, got \(masked) of \(3 * T)")
  }

  @Test func deepestLayerCoversTheConcatenation() {
    // the sweep probes the chosen layers, then k layers around the best: the pass must reach them all
    #expect(ProbeSweep.deepestLayer(layers: [2, 3, 4], modelLayers: 8, concat: 0) == 4)
    #expect(ProbeSweep.deepestLayer(layers: [2, 3, 4], modelLayers: 8, concat: 3) == 5)
    #expect(ProbeSweep.deepestLayer(layers: [2, 3, 4], modelLayers: 8, concat: 4) == 6)
    #expect(ProbeSweep.deepestLayer(layers: [7], modelLayers: 8, concat: 5) == 8)
    #expect(ProbeSweep.deepestLayer(layers: [0], modelLayers: 8, concat: 5) == 4)
    #expect(ProbeSweep.deepestLayer(layers: [0, 1], modelLayers: 2, concat: 9) == 2)
    for concat in 0...6 {
      for best in 0...8 {
        let range = ProbeSweep.concatLayers(best: best, concat: concat, modelLayers: 8)
        #expect(range.upperBound <= ProbeSweep.deepestLayer(layers: Array(0...best), modelLayers: 8, concat: concat))
        if concat > 1 { #expect(range.contains(best) && range.count == concat) }
      }
    }
  }
}
