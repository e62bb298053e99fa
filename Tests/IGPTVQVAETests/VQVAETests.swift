import Foundation
import Testing
import IGPTKernels
@testable import IGPTVQVAE

/// The VQ-VAE's networks and quantiser: gradients against central differences, the planted
/// centres test, shapes, and that a step is a function of its inputs.
@Suite struct VQVAETests {
  init() {
    Parallel.threads = 2
    BLAS.setThreads(1)
  }

  static let small = VQVAEConfig(resolution: 8, channels: 3, hiddens: 8, residualHiddens: 4, residualLayers: 2,
                                 embeddingDim: 4, codes: 16, downsample: 4)

  static func images(_ n: Int, _ c: VQVAEConfig, seed: UInt64) -> [Float] {
    var rng = SeededRandom(seed: seed)
    return (0..<(n * c.resolution * c.resolution * c.channels)).map { _ in Float(rng.uniform() - 0.5) }
  }

  @Test func shapesFollowTheConfig() throws {
    let m = try VQVAE(config: VQVAEConfig(resolution: 32, channels: 3))
    #expect(m.encoder.outputGeometry == (8, 8, 64))
    #expect(m.decoder.outputGeometry == (32, 32, 3))
    #expect(m.tensors.last!.offset + m.tensors.last!.count == m.parameterCount)
    #expect(Set(m.tensors.map(\.name)).count == m.tensors.count)
    #expect(m.tensors.first!.name == "encoder.down0.weight" && m.tensors.first!.shape == [4, 4, 3, 64])
    let big = try VQVAE(config: VQVAEConfig(resolution: 64, channels: 1, downsample: 4))
    #expect(big.encoder.outputGeometry == (16, 16, 64) && big.decoder.outputGeometry == (64, 64, 1))
    #expect(throws: VQVAEError.self) { try VQVAE(config: VQVAEConfig(resolution: 30, channels: 3)) }
    #expect(throws: VQVAEError.self) { try VQVAE(config: VQVAEConfig(resolution: 32, channels: 3, downsample: 3)) }
  }

  /// The whole network's parameter gradient (decoder, straight-through quantiser, commitment,
  /// encoder) against central differences of the loss with the codes held fixed.
  @Test func parameterGradientIsCentralDifferences() throws {
    let c = Self.small
    let m = try VQVAE(config: c)
    m.initialize(seed: 3)
    let B = 2
    let x = Self.images(B, c, seed: 4)
    // the codebook at encoder vectors moved off them a little, so no code sits on its vector
    let z0 = Array(UnsafeBufferPointer(start: m.encodeContinuous(x, batch: B), count: B * m.latentsPerImage * c.embeddingDim))
    m.quantizer.initialize(z: z0, count: B * m.latentsPerImage, seed: 5)
    for i in m.quantizer.codebook.indices { m.quantizer.codebook[i] += 0.05 * Float(i % 7) - 0.15 }
    let codebook = m.quantizer.codebook
    let fixed = m.encode(x, batch: B)
    let D = c.embeddingDim
    let q0 = fixed.flatMap { codebook[(Int($0) * D)..<(Int($0) * D + D)] }
    /// The loss the straight-through gradient is the gradient of: the decoder reads
    /// z + (q0 - z0), a constant offset (q0 at the base point, dq passing to z unchanged), and
    /// the commitment pulls z towards the fixed q0.
    let offset = zip(q0, z0).map { $0 - $1 }
    func loss() -> Double {
      let z = Array(UnsafeBufferPointer(start: m.encodeContinuous(x, batch: B), count: q0.count))
      var commit = 0.0
      for i in z.indices { commit += Double(z[i] - q0[i]) * Double(z[i] - q0[i]) }
      let input = zip(z, offset).map { $0 + $1 }
      let out = Array(UnsafeBufferPointer(start: m.decode(vectors: input, batch: B), count: x.count))
      var mse = 0.0
      for i in x.indices { mse += Double(out[i] - x[i]) * Double(out[i] - x[i]) }
      return mse / Double(x.count) / 0.06 + 0.25 * commit / Double(z.count)
    }
    let r = m.trainStep(x, batch: B, variance: 0.06, restartSeed: 0)
    #expect(abs(r.loss - loss()) < 1e-5 * max(1, r.loss))
    let analytic = Array(UnsafeBufferPointer(start: m.grads, count: m.parameterCount))
    m.quantizer.codebook = codebook  // trainStep moved it
    #expect(m.encode(x, batch: B) == fixed)
    var p = Array(UnsafeBufferPointer(start: m.params, count: m.parameterCount))
    // a sample of every tensor, encoder and decoder
    var worst: Float = 0
    var bad: [String] = []
    for t in m.tensors {
      for j in [0, t.count / 2, t.count - 1] {
        let i = t.offset + j
        let saved = p[i], eps: Float = 1e-3
        m.params[i] = saved + eps
        let up = loss()
        m.params[i] = saved - eps
        let down = loss()
        m.params[i] = saved
        p[i] = saved
        let fd = Float((up - down) / Double(2 * eps))
        let e = abs(fd - analytic[i]) / max(abs(fd), abs(analytic[i]), 1e-2)
        if e > 2e-2 { bad.append("\(t.name)[\(j)]: fd \(fd) analytic \(analytic[i])") }
        worst = max(worst, e)
      }
    }
    #expect(worst < 5e-2, "worst relative error \(worst): \(bad)")
  }

  /// The straight-through path: dz = dq + 2 beta (z - q) / (N D), element by element.
  @Test func straightThroughGradient() {
    let vq = VectorQuantizer(codes: 3, dim: 2)
    vq.codebook = [0, 0, 1, 1, -1, 2]
    let z: [Float] = [0.1, -0.2, 0.9, 1.2, -0.7, 1.5]
    var q = [Float](repeating: 0, count: 6), scratch = [Float](repeating: 0, count: 9)
    let b = vq.forward(q: &q, z: z, count: 3, scratch: &scratch)
    #expect(b.indices == [0, 1, 2])
    #expect(q == [0, 0, 1, 1, -1, 2])
    let dq: [Float] = [1, 2, 3, 4, 5, 6]
    var dz = [Float](repeating: 0, count: 6)
    vq.backward(dz: &dz, dq: dq, z: z, q: q, count: 3)
    for i in 0..<6 { #expect(abs(dz[i] - (dq[i] + 2 * 0.25 * (z[i] - q[i]) / 6)) < 1e-7) }
    var expected = 0.0
    for i in 0..<6 { expected += Double(z[i] - q[i]) * Double(z[i] - q[i]) }
    #expect(abs(b.commitment - 0.25 * expected / 6) < 1e-7)
    #expect(abs(b.perplexity - 3) < 1e-9 && b.used == 3)
  }

  /// Data drawn around k centres, the codebook started far from them: after a few
  /// moving-average updates every centre has a code at the mean of its points (much nearer
  /// than any one point, sigma sqrt(D) = 0.12, is), vectors quantise with the noise's error
  /// only, and the batch uses at least k codes.
  @Test func plantedCentresAreFound() {
    let k = 8, D = 6, N = 800, sigma = 0.05
    var rng = SeededRandom(seed: 21)
    let centres = (0..<(k * D)).map { _ in Float(rng.normal() * 3) }
    let vq = VectorQuantizer(codes: 16, dim: D)
    vq.decay = 0.8
    var scratch = [Float](repeating: 0, count: N * vq.codes)
    func batch() -> [Float] {
      var z = [Float](repeating: 0, count: N * D)
      for n in 0..<N {
        let c = n % k
        for d in 0..<D { z[n * D + d] = centres[c * D + d] + Float(rng.normal() * sigma) }
      }
      return z
    }
    vq.codebook = (0..<(vq.codes * D)).map { _ in Float(rng.normal() * 3 + 10) }
    vq.embedSum = vq.codebook
    vq.clusterSize = [Float](repeating: 1, count: vq.codes)
    for step in 0..<60 {
      let z = batch()
      let idx = vq.nearest(z, count: N, scratch: &scratch)
      vq.updateCodebook(z: z, indices: idx, restartSeed: UInt64(step))
    }
    var distances: [Double] = []
    for c in 0..<k {
      let best = (0..<vq.codes).map { j in (0..<D).map { d in Double(vq.codebook[j * D + d] - centres[c * D + d]) }.map { $0 * $0 }.reduce(0, +) }.min()!
      distances.append(best.squareRoot())
    }
    #expect(distances.max()! < 0.06, "centres to their nearest codes: \(distances)")
    var q = [Float](repeating: 0, count: N * D)
    let z = batch()
    let r = vq.forward(q: &q, z: z, count: N, scratch: &scratch)
    let error = zip(z, q).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(N)
    #expect(error < 1.3 * Double(D) * sigma * sigma, "mean squared quantisation error \(error)")
    #expect(r.perplexity >= Double(k) * 0.95 && r.used <= vq.codes, "perplexity \(r.perplexity)")
  }

  /// Dead codes are restarted on vectors of the batch; live ones are left alone.
  @Test func deadCodesRestartOnBatchVectors() {
    let vq = VectorQuantizer(codes: 4, dim: 1)
    vq.codebook = [0, 10, 20, 30]
    vq.clusterSize = [5, 5, 0.001, 5]
    vq.embedSum = [0, 50, 0.02, 150]
    let z: [Float] = [0.5, 10.5, 29.5]
    vq.updateCodebook(z: z, indices: [0, 1, 3], restartSeed: 7)
    #expect(z.contains(vq.codebook[2]) && vq.clusterSize[2] == 1)
    #expect(abs(vq.codebook[1] - 10) < 0.1)
  }

  /// configs/vqvae-*.yaml load, and their shapes are the issue's: 32x32 -> 8x8 and 64x64 -> 16x16, 512 codes.
  @Test func shippedConfigsLoad() throws {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("configs")
    let small = try VQVAERunConfig.load(path: dir.appendingPathComponent("vqvae-cifar32.yaml").path).vqvae(channels: 3)
    let large = try VQVAERunConfig.load(path: dir.appendingPathComponent("vqvae-64.yaml").path).vqvae(channels: 3)
    #expect(small.grid == 8 && small.codes == 512 && large.resolution == 64 && large.grid == 16 && large.codes == 512)
  }

  /// Two models from the same seed, stepped on the same images, hold the same bytes.
  @Test func stepsAreAFunctionOfTheirInputs() throws {
    func run() throws -> [Float] {
      let m = try VQVAE(config: Self.small)
      m.initialize(seed: 9)
      let x = Self.images(4, Self.small, seed: 10)
      m.quantizer.initialize(z: m.encodeContinuous(x, batch: 4), count: 4 * m.latentsPerImage, seed: 11)
      _ = m.trainStep(x, batch: 4, variance: 0.06, restartSeed: 12)
      return Array(UnsafeBufferPointer(start: m.grads, count: m.parameterCount)) + m.quantizer.codebook
    }
    #expect(try run() == run())
  }
}
