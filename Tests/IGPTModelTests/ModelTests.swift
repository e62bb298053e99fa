import Foundation
import Testing
@testable import IGPTKernels
@testable import IGPTModel

@Suite struct ModelTests {
  init() {
    Parallel.threads = 2
    BLAS.setThreads(1)
  }

  func randomTokens(_ n: Int, vocab: Int, seed: UInt64) -> [Int32] {
    var rng = SeededRandom(seed: seed)
    return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
  }

  @Test(arguments: ModelConfig.Objective.allCases)
  func lossAtInitialisationIsLogV(objective: ModelConfig.Objective) throws {
    for V in [2, 16, 512] {
      let model = try IGPT(config: ModelConfig(layers: 2, embd: 32, heads: 4, seq: 20, vocab: V,
                                               objective: objective))
      model.initialize(seed: 1)
      var rng = SeededRandom(seed: 2)
      let mask = BERTMask.draw(B: 4, T: 20, probability: 0.5, rng: &rng)
      let loss = model.loss(tokens: randomTokens(80, vocab: V, seed: 3), mask: mask, batch: 4)
      #expect(abs(loss - log(Double(V))) < 1e-6)
    }
  }

  @Test func parameterCountsOfThePaperModels() {
    #expect(ParameterLayout(ModelConfig.presets["igpt-s"]!).count == 76_571_648)
    #expect(ParameterLayout(ModelConfig.presets["igpt-m"]!).count == 455_157_760)
    #expect(ParameterLayout(ModelConfig.presets["igpt-l"]!).count == 1_362_250_752)
  }

  @Test func layoutTensorsTileTheSlab() {
    let layout = ParameterLayout(ModelConfig(layers: 3, embd: 8, heads: 2, seq: 5, vocab: 7))
    var next = 0
    for t in layout.tensors {
      #expect(t.offset == next)
      next += t.count
    }
    #expect(next == layout.count)
    #expect(layout.sos == layout.wte + 7 * 8)
    #expect(layout.tensor(named: "transformer.wte.weight")?.shape == [8, 8])
    #expect(layout.tensor(named: "transformer.h.2.attn.c_attn.weight")?.shape == [8, 24])
  }

  @Test func badConfigsAreOneLineErrors() {
    let cases: [(ModelConfig, String)] = [
      (ModelConfig(layers: 1, embd: 30, heads: 4, seq: 4, vocab: 4), "divisible"),
      (ModelConfig(layers: 0, embd: 32, heads: 4, seq: 4, vocab: 4), "layers"),
      (ModelConfig(layers: 1, embd: 32, heads: 4, seq: 4, vocab: 1), "vocab"),
      (ModelConfig(layers: 1, embd: 32, heads: 0, seq: 4, vocab: 4), "heads"),
    ]
    for (config, word) in cases {
      #expect(throws: ModelConfigError.self) { try config.validate() }
      do { try config.validate() } catch {
        #expect("\(error)".contains(word))
        #expect(!"\(error)".contains("\n"))
      }
    }
    let ok = ModelConfig(layers: 1, embd: 32, heads: 4, seq: 4, vocab: 4)
    #expect(throws: ModelConfigError.self) { try ok.validate(sequenceLength: 5) }
    #expect(throws: Never.self) { try ok.validate(sequenceLength: 4) }
  }

  /// Trains a tiny model on one batch until it memorises it. AR can never know an image's first
  /// pixel (it sees only sos), so the floor is ln(B)/T when first pixels differ: ln 2/32 = 0.022.
  @Test(arguments: ModelConfig.Objective.allCases)
  func overfitsOneBatch(objective: ModelConfig.Objective) throws {
    let B = 2, T = 32
    let config = ModelConfig(layers: 2, embd: 32, heads: 4, seq: T, vocab: 8, objective: objective)
    let model = try IGPT(config: config)
    model.initialize(seed: 1)
    let tokens = randomTokens(B * T, vocab: 8, seed: 4)
    var rng = SeededRandom(seed: 5)
    let mask = BERTMask.draw(B: B, T: T, probability: 0.25, rng: &rng)
    let n = model.parameterCount
    var m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
    var loss = 0.0
    for t in 1...500 {
      model.zeroGradients()
      loss = model.forwardBackward(tokens: tokens, mask: mask, batch: B)
      AdamW.update(params: model.params, grads: model.grads, m: &m, v: &v, count: n,
                   step: .init(learningRate: 3e-3, t: t))
      if loss < 0.05 { break }
    }
    #expect(loss < 0.05)
  }

  /// Same seed, same steps: the same bytes. Another seed: different bytes.
  @Test func trainingIsDeterministic() throws {
    func train(seed: UInt64) throws -> [Float] {
      let model = try IGPT(config: ModelConfig(layers: 2, embd: 32, heads: 4, seq: 16, vocab: 8))
      model.initialize(seed: seed)
      let n = model.parameterCount
      var m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
      for t in 1...5 {
        model.zeroGradients()
        model.forwardBackward(tokens: randomTokens(64, vocab: 8, seed: UInt64(t)), batch: 4)
        AdamW.update(params: model.params, grads: model.grads, m: &m, v: &v, count: n,
                     step: .init(learningRate: 1e-3, t: t))
      }
      return Array(UnsafeBufferPointer(start: model.params, count: n))
    }
    let a = try train(seed: 9), b = try train(seed: 9), c = try train(seed: 10)
    #expect(a.withUnsafeBytes { Array($0) } == b.withUnsafeBytes { Array($0) })
    #expect(a != c)
  }

  /// Recomputing activations in backward gives the same loss and gradient bytes as keeping
  /// them, with a fraction of the activation memory; features afterwards are unaffected.
  @Test(arguments: ModelConfig.Objective.allCases)
  func recomputedActivationsGiveTheSameBytes(objective: ModelConfig.Objective) throws {
    let config = ModelConfig(layers: 4, embd: 32, heads: 2, seq: 12, vocab: 9, objective: objective)
    let tokens = randomTokens(3 * 12, vocab: 9, seed: 21)
    var rng = SeededRandom(seed: 22)
    let mask: [UInt8] = (0..<(3 * 12)).map { _ in rng.next() % 3 == 0 ? 1 : 0 }
    func run(recompute: Bool) throws -> (loss: Double, grads: [Float], bytes: Int, features: [[Float]]) {
      let model = try IGPT(config: config)
      model.initialize(seed: 5)
      var r = SeededRandom(seed: 6)
      model.perturbForTesting(rng: &r)
      model.recomputeActivations = recompute
      model.zeroGradients()
      let loss = model.forwardBackward(tokens: tokens, mask: mask, batch: 3)
      let bytes = model.activationBytes
      let grads = Array(UnsafeBufferPointer(start: model.grads, count: model.parameterCount))
      let features = model.allFeatures(tokens: tokens, mask: mask, batch: 3)
      return (loss, grads, bytes, features)
    }
    let kept = try run(recompute: false), recomputed = try run(recompute: true)
    #expect(kept.loss == recomputed.loss)
    let sameBytes = kept.grads.withUnsafeBytes { Array($0) } == recomputed.grads.withUnsafeBytes { Array($0) }
    #expect(sameBytes, "gradients differ with recomputed activations")
    #expect(kept.grads.contains { $0 != 0 })
    #expect(recomputed.bytes < kept.bytes * 2 / 3)
    #expect(kept.features == recomputed.features)
  }

  /// Two half batches with loss scale 1/2 give the gradient of the whole batch.
  @Test func microbatchGradientsSumToTheBatchGradient() throws {
    let model = try IGPT(config: ModelConfig(layers: 2, embd: 16, heads: 2, seq: 8, vocab: 6))
    model.initialize(seed: 3)
    var rng = SeededRandom(seed: 4)
    model.perturbForTesting(rng: &rng)
    let tokens = randomTokens(4 * 8, vocab: 6, seed: 5)
    model.zeroGradients()
    model.forwardBackward(tokens: tokens, batch: 4)
    let whole = Array(UnsafeBufferPointer(start: model.grads, count: model.parameterCount))
    model.zeroGradients()
    tokens.withUnsafeBufferPointer { tk in
      model.forwardBackward(tokens: tk.baseAddress!, batch: 2, lossScale: 0.5)
      model.forwardBackward(tokens: tk.baseAddress! + 16, batch: 2, lossScale: 0.5)
    }
    let summed = Array(UnsafeBufferPointer(start: model.grads, count: model.parameterCount))
    let scale = whole.map { abs($0) }.max()!
    #expect(zip(whole, summed).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
  }

  /// Summing next-token log-losses over every prefix reproduces the AR loss: the logits at a
  /// position see only earlier tokens, and nextLogits reads the right position.
  @Test func nextLogitsAgreeWithTheLoss() throws {
    let T = 10, V = 7
    let model = try IGPT(config: ModelConfig(layers: 2, embd: 16, heads: 2, seq: T, vocab: V))
    model.initialize(seed: 3)
    var rng = SeededRandom(seed: 8)
    model.perturbForTesting(rng: &rng)
    let tokens = randomTokens(T, vocab: V, seed: 11)
    let loss = model.loss(tokens: tokens, batch: 1)
    var sum = 0.0
    for n in 0..<T {
      let logits = tokens.withUnsafeBufferPointer {
        model.nextLogits(prefix: $0.baseAddress!, batch: 1, length: n)
      }.map { Double($0) }
      let m = logits.max()!
      let lse = m + log(logits.map { exp($0 - m) }.reduce(0, +))
      sum += lse - logits[Int(tokens[n])]
    }
    #expect(abs(sum / Double(T) - loss) < 1e-5)
  }

  /// Layer-0 features are the mean over positions of ln_1 of the embeddings (with the AR shift).
  @Test func layerZeroFeaturesAreTheMeanOfNormedEmbeddings() throws {
    let T = 6, C = 8, V = 5
    let model = try IGPT(config: ModelConfig(layers: 2, embd: C, heads: 2, seq: T, vocab: V))
    model.initialize(seed: 3)
    var rng = SeededRandom(seed: 8)
    model.perturbForTesting(rng: &rng)
    let tokens = randomTokens(T, vocab: V, seed: 12)
    let f = model.features(tokens: tokens, batch: 1, layer: 0)
    let p = model.params, l = model.layout
    var want = [Double](repeating: 0, count: C)
    for t in 0..<T {
      let e = t == 0 ? l.sos : l.wte + Int(tokens[t - 1]) * C
      let h = (0..<C).map { Double(p[e + $0]) + Double(p[l.wpe + t * C + $0]) }
      let r = 1 / (h.map { $0 * $0 }.reduce(0, +) / Double(C) + 1e-5).squareRoot()
      for c in 0..<C { want[c] += h[c] * r * Double(p[l.blocks[0].ln1 + c]) / Double(T) }
    }
    for c in 0..<C { #expect(abs(Double(f[c]) - want[c]) < 1e-5) }
    let last = model.features(tokens: tokens, batch: 1, layer: 2)
    #expect(last.count == C && last != f)
  }
}
