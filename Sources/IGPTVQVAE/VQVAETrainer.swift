import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining

/// VQ-VAE training on one host: each step's batch is a function of (seed, step) (`DataOrder`),
/// its gradient one `VQVAE.trainStep`, the update AdamW (beta2 0.999, no weight decay) and the
/// codebook's moving averages. A checkpoint holds all of it, so resuming is exact.
public final class VQVAETrainer {
  public let config: VQVAERunConfig
  public let data: ImageSplits
  public let model: VQVAE
  /// The training pixels' variance (the reconstruction loss is divided by it).
  public let variance: Double
  /// Completed steps.
  public private(set) var step: Int
  public var lastLoss: Double?
  public var lastEval: VQVAEEvaluation?
  /// AdamW's moments (parameter-sized).
  var m: [Float]
  var v: [Float]
  private var order: DataOrder

  public init(config: VQVAERunConfig, data: ImageSplits, resumeFrom loaded: VQVAECheckpoint.Loaded? = nil) throws {
    self.config = config
    self.data = data
    let shape = config.vqvae(channels: data.channels)
    order = DataOrder(count: data.count("train"), seed: config.train.seed)
    if let loaded {
      guard loaded.model.config == shape else {
        throw ConfigError("the checkpoint's VQ-VAE \(loaded.model.config) does not match the config's \(shape)")
      }
      model = loaded.model
      m = loaded.m
      v = loaded.v
      step = loaded.state.step
      variance = loaded.state.variance
      lastLoss = loaded.state.loss
      lastEval = loaded.state.eval
    } else {
      model = try VQVAE(config: shape)
      model.initialize(seed: config.train.seed)
      m = [Float](repeating: 0, count: model.parameterCount)
      v = m
      step = 0
      variance = data.variance("train")
    }
    let q = model.quantizer
    q.beta = Float(config.quantizer.beta)
    q.decay = Float(config.quantizer.decay)
    q.deadBelow = Float(config.quantizer.deadBelow)
    if loaded == nil {
      // the codebook starts at encoder outputs of the first batch
      let first = batch(step: 0)
      q.initialize(z: model.encodeContinuous(first, batch: config.train.batch), count: config.train.batch * model.latentsPerImage,
                   seed: config.train.seed &+ 0xC0DE)
    }
  }

  /// Step s's images (batch * R * R * C).
  public func batch(step s: Int) -> [Float] {
    let B = config.train.batch, per = data.floatsPerImage
    let indices = order.microbatch(step: s, micro: 0, batch: B, microbatch: B)
    var out = [Float](repeating: 0, count: B * per)
    data.images["train"]!.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for (j, i) in indices.enumerated() { (dst.baseAddress! + j * per).update(from: src.baseAddress! + i * per, count: per) }
      }
    }
    return out
  }

  /// The learning rate of 0-based step s: linear warmup, then constant or cosine to zero.
  public func learningRate(at s: Int) -> Double {
    let t = config.train
    if t.cosine { return LearningRateSchedule(peak: t.lr, warmup: t.warmup, steps: t.steps).rate(at: s) }
    return s < t.warmup ? t.lr * Double(s + 1) / Double(t.warmup) : t.lr
  }

  public struct StepResult: Sendable {
    public var step: VQVAE.StepResult
    public var learningRate: Double
  }

  /// One step: gradients, AdamW, codebook.
  public func trainStep() -> StepResult {
    let x = batch(step: step)
    let r = model.trainStep(x, batch: config.train.batch, variance: variance,
                            restartSeed: config.train.seed &* 0x9E37_79B9 &+ UInt64(step))
    let lr = learningRate(at: step)
    m.withUnsafeMutableBufferPointer { mp in
      v.withUnsafeMutableBufferPointer { vp in
        AdamW.update(params: model.params, grads: model.grads, m: mp.baseAddress!, v: vp.baseAddress!, count: model.parameterCount,
                     step: .init(learningRate: Float(lr), t: step + 1, beta1: 0.9, beta2: 0.999, eps: 1e-8))
      }
    }
    step += 1
    lastLoss = r.loss
    return StepResult(step: r, learningRate: lr)
  }

  /// Reconstruction quality on the first `count` images of a split (all when nil).
  public func evaluate(split: String, count: Int? = nil) throws -> VQVAEEvaluation {
    try VQVAEEvaluation.measure(model, data, split: split, count: count, batch: config.train.batch)
  }

  /// The state a checkpoint records now.
  public func state() -> VQVAECheckpoint.State {
    VQVAECheckpoint.State(step: step, config: config, model: model.config, dataset: data.source, variance: variance,
                          checksums: [:], loss: lastLoss, eval: lastEval)
  }

  /// Writes a checkpoint of the current step; returns its path.
  @discardableResult
  public func checkpoint(runDir: String) throws -> String {
    try VQVAECheckpoint.write(runDir: runDir, state: state(), model: model, m: m, v: v, keep: config.checkpoint.keep)
  }
}
