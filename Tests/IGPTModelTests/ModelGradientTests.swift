import Foundation
import Testing
@testable import IGPTKernels
@testable import IGPTModel

/// The whole model's gradient, tensor by tensor, against directional finite differences.
@Suite struct ModelGradientTests {
  static let config = ModelConfig(layers: 2, embd: 16, heads: 2, seq: 9, vocab: 5)
  static let B = 3

  /// A model with a non-zero head (so every tensor has a gradient), its batch and mask.
  static func setUp(_ objective: ModelConfig.Objective) throws -> (IGPT, [Int32], [UInt8]) {
    Parallel.threads = 2
    BLAS.setThreads(1)
    var c = config
    c.objective = objective
    let model = try IGPT(config: c)
    model.initialize(seed: 5)
    var rng = SeededRandom(seed: 6)
    model.perturbForTesting(rng: &rng)
    let tokens = (0..<(B * c.seq)).map { _ in Int32(rng.next() % UInt64(c.vocab)) }
    var mask = BERTMask.draw(B: B, T: c.seq, probability: 0.4, rng: &rng)
    mask[0] = 1  // every image has at least one masked position
    mask[c.seq] = 1
    mask[2 * c.seq] = 1
    return (model, tokens, mask)
  }

  @Test(arguments: ModelConfig.Objective.allCases)
  func everyTensorMatchesFiniteDifferences(objective: ModelConfig.Objective) throws {
    let (model, tokens, mask) = try Self.setUp(objective)
    model.zeroGradients()
    model.forwardBackward(tokens: tokens, mask: mask, batch: Self.B)
    var rng = SeededRandom(seed: 7)
    for t in model.layout.tensors {
      let g = (0..<t.count).map { Double(model.grads[t.offset + $0]) }
      let gNorm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
      #expect(gNorm > 1e-4, "\(t.name) has no gradient: the check would be vacuous")
      // direction: half along the gradient, half random, unit length
      let noise = (0..<t.count).map { _ in rng.normal() }
      let nNorm = noise.map { $0 * $0 }.reduce(0, +).squareRoot()
      var u = (0..<t.count).map { 0.5 * g[$0] / gNorm + 0.5 * noise[$0] / nNorm }
      let uNorm = u.map { $0 * $0 }.reduce(0, +).squareRoot()
      u = u.map { $0 / uNorm }
      let analytic = zip(g, u).map(*).reduce(0, +)
      // step so the loss moves by about 1e-3 (well above Float rounding), within [1e-3, 0.1]
      let eps = min(0.1, max(1e-3, 1e-3 / abs(analytic)))
      let saved = (0..<t.count).map { model.params[t.offset + $0] }
      func loss(at step: Double) -> Double {
        for i in 0..<t.count { model.params[t.offset + i] = saved[i] + Float(step * u[i]) }
        return model.loss(tokens: tokens, mask: mask, batch: Self.B)
      }
      let fd = (loss(at: eps) - loss(at: -eps)) / (2 * eps)
      for i in 0..<t.count { model.params[t.offset + i] = saved[i] }
      let err = abs(fd - analytic) / max(abs(fd), abs(analytic))
      #expect(err < 5e-3, "\(objective) \(t.name): finite difference \(fd) vs backward \(analytic)")
    }
  }
}
