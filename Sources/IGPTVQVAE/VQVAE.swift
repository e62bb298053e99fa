import Foundation
import IGPTKernels

/// A VQ-VAE: encoder and decoder networks over one parameter slab, and the quantiser between.
///
/// Images are NHWC floats in [-0.5, 0.5] (pixels in [0, 1] minus a half, as DeepMind's example);
/// the latent grid is (grid, grid) codes in raster order. `train(step:)` computes the loss
/// mean((x' - x)^2) / variance + commitment, its gradients into `grads` (overwritten), and
/// moves the codebook; the caller applies AdamW to `params` from `grads`.
public final class VQVAE {
  public let config: VQVAEConfig
  public let encoder: ConvNetwork
  public let decoder: ConvNetwork
  public let tensors: [Tensor]
  public let parameterCount: Int
  public let params: UnsafeMutablePointer<Float>
  public let grads: UnsafeMutablePointer<Float>
  public let quantizer: VectorQuantizer
  private var workspace: Workspace?

  /// One named parameter tensor in the slab. Convolution weights are (k, k, in, out);
  /// transposed convolution weights (in, k, k, out).
  public struct Tensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    /// Inputs feeding one output of the layer (its bias too): k * k * in.
    public let fanIn: Int
    public var count: Int { shape.reduce(1, *) }
  }

  public init(config c: VQVAEConfig) throws {
    if let p = c.problem { throw VQVAEError(p) }
    config = c
    var b = Builder()
    encoder = b.encoder(c)
    decoder = b.decoder(c)
    tensors = b.tensors
    parameterCount = b.count
    params = .allocate(capacity: b.count)
    grads = .allocate(capacity: b.count)
    params.initialize(repeating: 0, count: b.count)
    grads.initialize(repeating: 0, count: b.count)
    quantizer = VectorQuantizer(codes: c.codes, dim: c.embeddingDim)
  }

  deinit {
    params.deallocate()
    grads.deallocate()
  }

  /// Weights and biases uniform in +-1/sqrt(fan_in) (PyTorch's default for convolutions),
  /// from one seeded generator in slab order.
  public func initialize(seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    for t in tensors {
      let bound = 1 / Double(t.fanIn).squareRoot()
      for i in 0..<t.count { params[t.offset + i] = Float((rng.uniform() * 2 - 1) * bound) }
    }
  }

  /// Latent vectors per image.
  public var latentsPerImage: Int { config.grid * config.grid }
  /// Floats per input image.
  public var imageFloats: Int { config.resolution * config.resolution * config.channels }
  /// Forward multiply-adds per image (encoder, distances, decoder).
  public var macsPerImage: Int { encoder.macsPerImage + decoder.macsPerImage + latentsPerImage * config.codes * config.embeddingDim }

  func space(_ batch: Int) -> Workspace {
    if let w = workspace, w.batch == batch { return w }
    let w = Workspace(self, batch: batch)
    workspace = w
    return w
  }

  /// What one training step measured.
  public struct StepResult: Sendable {
    /// mean((x' - x)^2) in [0, 1] pixel units.
    public var mse: Double
    public var commitment: Double
    /// The loss that was differentiated: mse / variance + commitment.
    public var loss: Double
    public var perplexity: Double
    public var codesUsed: Int
  }

  /// The encoder's continuous output z (batch * grid^2, D) for images (batch, R, R, C); valid
  /// until the next call.
  public func encodeContinuous(_ images: UnsafePointer<Float>, batch B: Int) -> UnsafePointer<Float> {
    let w = space(B)
    w.encActs[0].update(from: images, count: B * imageFloats)
    encoder.forward(acts: w.encActs, params: params, cols: w.cols, batch: B)
    return UnsafePointer(w.encActs[encoder.output])
  }

  /// Gradients of the loss for `images` into `grads` (overwritten), then the codebook's moving
  /// averages and restarts. `variance`: the training pixels' variance (the loss divides by it).
  public func trainStep(_ images: UnsafePointer<Float>, batch B: Int, variance: Double, restartSeed: UInt64) -> StepResult {
    let w = space(B)
    let z = encodeContinuous(images, batch: B)
    let n = B * latentsPerImage
    let q = w.decActs[0]
    let vq = quantizer.forward(q: q, z: z, count: n, scratch: w.distances)
    decoder.forward(acts: w.decActs, params: params, cols: w.cols, batch: B)
    let count = B * imageFloats
    let out = w.decActs[decoder.output], dout = w.decGrads.dacts[decoder.output]
    var squared = 0.0
    let scale = Float(2 / (Double(count) * variance))
    for i in 0..<count {
      let d = out[i] - images[i]
      squared += Double(d) * Double(d)
      dout[i] = scale * d
    }
    grads.update(repeating: 0, count: parameterCount)
    decoder.backward(acts: w.decActs, g: w.decGrads, params: params, grads: grads, batch: B, inputGradient: true)
    quantizer.backward(dz: w.encGrads.dacts[encoder.output], dq: w.decGrads.dacts[0], z: z, q: q, count: n)
    encoder.backward(acts: w.encActs, g: w.encGrads, params: params, grads: grads, batch: B, inputGradient: false)
    quantizer.updateCodebook(z: z, indices: vq.indices, restartSeed: restartSeed)
    let mse = squared / Double(count)
    return StepResult(mse: mse, commitment: vq.commitment, loss: mse / variance + vq.commitment,
                      perplexity: vq.perplexity, codesUsed: vq.used)
  }

  /// The codes of images (batch, R, R, C): (batch, grid^2) in raster order.
  public func encode(_ images: UnsafePointer<Float>, batch B: Int) -> [Int32] {
    let z = encodeContinuous(images, batch: B)
    return quantizer.nearest(z, count: B * latentsPerImage, scratch: space(B).distances)
  }

  /// Images (batch, R, R, C) in [-0.5, 0.5] decoded from codes (batch, grid^2); valid until the next call.
  public func decode(_ codes: UnsafePointer<Int32>, batch B: Int) -> UnsafePointer<Float> {
    let w = space(B)
    let D = config.embeddingDim
    quantizer.codebook.withUnsafeBufferPointer { e in
      for i in 0..<(B * latentsPerImage) { (w.decActs[0] + i * D).update(from: e.baseAddress! + Int(codes[i]) * D, count: D) }
    }
    decoder.forward(acts: w.decActs, params: params, cols: w.cols, batch: B)
    return UnsafePointer(w.decActs[decoder.output])
  }

  /// Images decoded from latent vectors (batch * grid^2, D), codes or not; valid until the next call.
  public func decode(vectors: UnsafePointer<Float>, batch B: Int) -> UnsafePointer<Float> {
    let w = space(B)
    w.decActs[0].update(from: vectors, count: B * latentsPerImage * config.embeddingDim)
    decoder.forward(acts: w.decActs, params: params, cols: w.cols, batch: B)
    return UnsafePointer(w.decActs[decoder.output])
  }
}

/// A one-line error about a VQ-VAE's shape or files.
public struct VQVAEError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
