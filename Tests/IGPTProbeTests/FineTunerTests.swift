import Foundation
import Testing

@testable import IGPTKernels
@testable import IGPTModel
@testable import IGPTProbe

@Suite struct FineTunerTests {
  /// The joint loss L_GEN + L_CLF, forward only, as the fine-tuner defines it.
  func totalLoss(_ f: FineTuner, tokens: [Int32], labels: [Int]) -> Double {
    let B = labels.count
    let gen = tokens.withUnsafeBufferPointer { f.model.loss(tokens: $0.baseAddress!, batch: B) }
    let pooled = tokens.withUnsafeBufferPointer { f.model.features(tokens: $0.baseAddress!, batch: B, layer: f.model.config.layers) }
    return gen + f.classify(pooled, labels: labels).loss
  }

  @Test func classifierGradientFlowsIntoTheModelCorrectly() throws {
    Parallel.threads = 2
    let model = try IGPT(config: ModelConfig(layers: 2, embd: 16, heads: 2, seq: 8, vocab: 5, objective: .ar))
    model.initialize(seed: 11)
    var prng = SeededRandom(seed: 12)
    model.perturbForTesting(rng: &prng)
    let f = FineTuner(model: model, classes: 3)
    var rng = SeededRandom(seed: 13)
    f.wclf = f.wclf.map { _ in Float(rng.normal()) * 0.5 }
    f.bclf = f.bclf.map { _ in Float(rng.normal()) * 0.1 }
    let tokens = (0..<(4 * 8)).map { _ in Int32(rng.next() % 5) }
    let labels = [0, 2, 1, 2]
    let r = f.gradients(tokens: tokens, mask: [], labels: labels, generativeWeight: 1)
    // directional derivative along a random direction of the model parameters
    let n = model.parameterCount
    var dir = (0..<n).map { _ in Float(rng.normal()) }
    let norm = dir.reduce(0) { $0 + $1 * $1 }.squareRoot()
    dir = dir.map { $0 / norm }
    var analytic = 0.0
    for i in 0..<n { analytic += Double(model.grads[i]) * Double(dir[i]) }
    let saved = Array(UnsafeBufferPointer(start: model.params, count: n))
    let eps: Float = 1e-2
    for i in 0..<n { model.params[i] = saved[i] + eps * dir[i] }
    let plus = totalLoss(f, tokens: tokens, labels: labels)
    for i in 0..<n { model.params[i] = saved[i] - eps * dir[i] }
    let minus = totalLoss(f, tokens: tokens, labels: labels)
    for i in 0..<n { model.params[i] = saved[i] }
    let numeric = (plus - minus) / Double(2 * eps)
    #expect(abs(analytic - numeric) <= 2e-2 * max(abs(numeric), 1e-3), "analytic \(analytic) numeric \(numeric)")
    // and the classifier's own gradient
    var w = f.wclf
    let k = 5
    w[k] += 1e-3
    let pooled = tokens.withUnsafeBufferPointer { model.features(tokens: $0.baseAddress!, batch: 4, layer: 2) }
    let base = f.classify(pooled, labels: labels).loss
    let saveW = f.wclf
    f.wclf = w
    let bumped = f.classify(pooled, labels: labels).loss
    f.wclf = saveW
    #expect(abs((bumped - base) / 1e-3 - Double(r.classifierGradient[k])) < 1e-2)
    // the classifier's path really contributes: without it the model gradient differs
    let genOnly = Array(UnsafeBufferPointer(start: model.grads, count: n))
    _ = f.gradients(tokens: tokens, mask: [], labels: labels, generativeWeight: 0)
    let clfOnly = Array(UnsafeBufferPointer(start: model.grads, count: n))
    #expect(clfOnly.contains { $0 != 0 } && clfOnly != genOnly)
  }

  @Test func theCosineTakesTheRatesFromFullToZero() {
    #expect(FineTuner.rateScale(step: 0, steps: 100, cosine: true) == 1)
    #expect(abs(FineTuner.rateScale(step: 50, steps: 100, cosine: true) - 0.5) < 1e-12)
    #expect(FineTuner.rateScale(step: 99, steps: 100, cosine: true) < 0.001)
    #expect(FineTuner.rateScale(step: 60, steps: 100, cosine: false) == 1)
  }

  /// A training step's Adam update gets the rates scaled for its step: halfway through a cosine
  /// at twice the rates moves every parameter exactly as the first step at the rates does.
  @Test func aStepOnTheCosineUpdatesAtTheScaledRates() throws {
    Parallel.threads = 2
    func tunedAt(step: Int, rate: Double, cosine: Bool) throws -> [Float] {
      let model = try IGPT(config: ModelConfig(layers: 1, embd: 16, heads: 2, seq: 8, vocab: 5, objective: .ar))
      model.initialize(seed: 5)
      let f = FineTuner(model: model, classes: 3)
      var o = FineTuner.Options()
      o.steps = 4
      o.cosine = cosine
      o.learningRate = rate
      o.headLearningRate = 10 * rate
      var data = SeededRandom(seed: 6), rng = SeededRandom(seed: 7)
      let tokens = (0..<(4 * 8)).map { _ in Int32(data.next() % 5) }
      _ = f.trainStep(tokens: tokens, labels: [0, 1, 2, 1], step: step, options: o, rng: &rng)
      return Array(UnsafeBufferPointer(start: model.params, count: model.parameterCount)) + f.wclf + f.bclf
    }
    let first = try tunedAt(step: 0, rate: 1e-3, cosine: true)
    #expect(try tunedAt(step: 2, rate: 2e-3, cosine: true) == first, "the cosine is 1/2 at step 2 of 4")
    #expect(try tunedAt(step: 2, rate: 1e-3, cosine: false) == first, "constant rates do not decay")
    #expect(try tunedAt(step: 2, rate: 1e-3, cosine: true) != first)
  }

  @Test func aHeadStartedFromAProbeIsKeptAndSaidSo() throws {
    let model = try IGPT(config: ModelConfig(layers: 1, embd: 16, heads: 2, seq: 8, vocab: 5, objective: .ar))
    let f = FineTuner(model: model, classes: 3)
    #expect(!f.headFromProbe)
    let w = (0..<48).map { Float($0) / 48 }, b: [Float] = [0.1, -0.2, 0.3]
    f.startHead(weights: w, bias: b)
    #expect(f.headFromProbe && f.wclf == w && f.bclf == b)
  }

  @Test func theClassifierTakesItsOwnLearningRate() throws {
    Parallel.threads = 2
    let model = try IGPT(config: ModelConfig(layers: 1, embd: 16, heads: 2, seq: 8, vocab: 5, objective: .ar))
    model.initialize(seed: 3)
    let f = FineTuner(model: model, classes: 3)
    var rng = SeededRandom(seed: 4)
    let tokens = (0..<(4 * 8)).map { _ in Int32(rng.next() % 5) }
    let r = f.gradients(tokens: tokens, mask: [], labels: [0, 1, 2, 1], generativeWeight: 1)
    let before = Array(UnsafeBufferPointer(start: model.params, count: model.parameterCount))
    f.update(classifierGradient: r.classifierGradient, learningRate: 1e-4, headLearningRate: 1e-2)
    // Adam's first step moves each parameter by about its rate (where the gradient is not 0)
    let head = (f.wclf + f.bclf).map { abs($0) }.max()!
    var body: Float = 0
    for i in 0..<model.parameterCount { body = max(body, abs(model.params[i] - before[i])) }
    #expect(head > 5e-3 && head < 2e-2, "head moved \(head)")
    #expect(body > 5e-5 && body < 2e-4, "body moved \(body)")
  }
}
