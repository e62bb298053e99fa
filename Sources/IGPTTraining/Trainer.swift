import Foundation
import IGPTData
import IGPTKernels
import IGPTModel

/// Single-host training: each step's global batch is its fixed list of microbatches, whose
/// gradients are computed one by one (`Gradient.compute`), summed in the step's fixed tree
/// (`GradientTree`, as a cluster sums them), clipped and applied
/// with AdamW on the warmup-cosine schedule. Checkpoints restore all of it exactly.
public final class Trainer {
  public let config: RunConfig
  public let model: IGPT
  public let optimizer: Optimizer
  public let store: TokenStore
  public let train: TokenSplit
  public let val: TokenSplit?
  public let schedule: LearningRateSchedule
  /// Completed steps.
  public private(set) var step: Int
  private var order: DataOrder
  /// The train images' augmentation and the token a shift uncovers (nil: none).
  private let augmentation: (Augmentation, fill: Int32, side: Int)?
  public var lastLoss: Double?
  public var lastValLoss: Double?
  /// The run's numerics, recorded in every checkpoint (set by the command that runs it).
  public var numerics: RunNumerics?

  /// Result of one step.
  public struct StepResult: Sendable {
    public var loss: Double
    public var gradNorm: Double
    public var learningRate: Double
  }

  /// A fresh run (seeded initialisation) or one continued from a checkpoint.
  public init(config: RunConfig, store: TokenStore, resumeFrom loaded: Checkpoint.Loaded? = nil) throws {
    self.config = config
    self.store = store
    train = try store.split("train")
    val = store.manifest.splits["val"] != nil ? try store.split("val") : nil
    guard train.count > 0 else { throw DataError.file(store.path, "the train split is empty") }
    let shape = try config.modelConfig(storeSequenceLength: store.manifest.sequenceLength, storeVocab: store.vocab)
    if let loaded {
      guard loaded.model.config == shape else {
        throw ConfigError("the checkpoint's model \(loaded.model.config) does not match the config's \(shape)")
      }
      model = loaded.model
      let opt = Optimizer(count: loaded.model.parameterCount, sharedGradient: Self.sharedGradient(config, model))
      loaded.loadMoments(into: opt)
      optimizer = opt
      step = loaded.state.step
      lastLoss = loaded.state.loss
      lastValLoss = loaded.state.valLoss
    } else {
      model = try IGPT(config: shape)
      model.initialize(seed: config.train.seed)
      optimizer = Optimizer(count: model.parameterCount, sharedGradient: Self.sharedGradient(config, model))
      step = 0
    }
    model.recomputeActivations = config.train.recompute
    schedule = LearningRateSchedule(peak: config.train.lr, warmup: config.train.warmup, steps: config.train.steps)
    order = DataOrder(count: train.count, seed: config.train.seed)
    augmentation = try Self.augmentation(config.data.augment, store: store)
  }

  /// The augmentation a run applies to its train images, checked against the store's layout.
  static func augmentation(_ a: Augmentation?, store: TokenStore) throws -> (Augmentation, fill: Int32, side: Int)? {
    guard let a, a.isActive else { return nil }
    guard let palette = store.palette else {
      throw ConfigError("data.augment needs a palette store: \(store.path) holds VQ-VAE codes, which do not shift or mirror as pixels do")
    }
    let side = store.manifest.resolution
    guard side * side == store.manifest.sequenceLength else {
      throw ConfigError("data.augment: \(store.path) has \(store.manifest.sequenceLength) tokens per image, not a \(side) x \(side) grid")
    }
    guard a.translate < side else { throw ConfigError("data.augment.translate (\(a.translate)) must be below the image side (\(side))") }
    return (a, Augmentation.fillToken(colors: palette.colors, channels: palette.channels), side)
  }

  public var microbatchesPerStep: Int { config.train.batch / config.train.microbatch }

  /// With one microbatch per step, the model's gradient slab is the step's gradient (0 + g is
  /// g, up to the sign of zeros, which AdamW and the norm cannot see): one slab less.
  static func sharedGradient(_ config: RunConfig, _ model: IGPT) -> UnsafeMutablePointer<Float>? {
    config.train.batch == config.train.microbatch ? model.grads : nil
  }
  public var tokensPerStep: Int { config.train.batch * train.sequenceLength }

  /// Microbatch `micro` of step `s`: its images and (BERT) masks.
  public func microbatch(step s: Int, micro: Int) throws -> Microbatch {
    let t = config.train
    let indices = order.microbatch(step: s, micro: micro, batch: t.batch, microbatch: t.microbatch)
    var mb = try Microbatch.load(indices, from: train, objective: model.config.objective,
                                 maskSeed: Microbatch.maskSeed(seed: t.seed, step: s, micro: micro))
    if let (a, fill, side) = augmentation {
      // each image's draw from its position in the data order (DataOrder.microbatch's start)
      let first = s * t.batch + micro * t.microbatch
      mb.tokens.withUnsafeMutableBufferPointer { tk in
        for i in 0..<mb.count {
          Augmentation.apply(a.draw(seed: t.seed, position: first + i), to: tk.baseAddress! + i * mb.length, side: side, fill: fill)
        }
      }
    }
    return mb
  }

  /// Applies the summed gradient of the current step (in `optimizer.gradient`) and advances.
  @discardableResult
  public func applyUpdate(loss: Double) -> StepResult {
    let t = config.train
    let lr = schedule.rate(at: step)
    let norm = optimizer.update(params: model.params, learningRate: lr, clip: t.clip, beta1: t.beta1,
                                beta2: t.beta2, weightDecay: t.weightDecay)
    step += 1
    lastLoss = loss
    return StepResult(loss: loss, gradNorm: norm, learningRate: lr)
  }

  /// An update applied elsewhere (by parameter-server shards, from this run's schedule): the
  /// step's bookkeeping only. The model and moments here are stale until pulled back.
  public func recordUpdate(loss: Double, gradNorm: Double, learningRate: Double) -> StepResult {
    optimizer.steps += 1
    step += 1
    lastLoss = loss
    return StepResult(loss: loss, gradNorm: gradNorm, learningRate: learningRate)
  }

  /// The tree this run sums each step's microbatch gradients in.
  public var gradientTree: GradientTree { GradientTree(count: microbatchesPerStep) }

  /// One optimizer step on this host: the microbatches' gradients summed in the step's tree
  /// (`GradientTree`), as a cluster sums them.
  public func trainStep() throws -> StepResult {
    let n = microbatchesPerStep
    let scale = Float(config.train.microbatch) / Float(config.train.batch)
    if optimizer.sharesGradient {
      return applyUpdate(loss: Gradient.compute(model: model, microbatch: try microbatch(step: step, micro: 0), scale: 1))
    }
    let sum = GradientReduction(tree: gradientTree, parameterCount: model.parameterCount, output: optimizer.gradient)
    var loss = 0.0
    for micro in 0..<n {
      let mb = try microbatch(step: step, micro: micro)
      loss += Gradient.compute(model: model, microbatch: mb, scale: scale) * Double(scale)
      sum.add(sum.tree.leaf(micro), values: model.grads)
    }
    precondition(sum.isComplete, "the step's gradient tree is incomplete")
    return applyUpdate(loss: loss)
  }

  /// The validation microbatches: the first `train.val_images` images of the val split in
  /// chunks of `train.microbatch`, with fixed BERT masks. Empty without a val split.
  public func validationMicrobatches() throws -> [Microbatch] {
    guard let val, val.count > 0 else { return [] }
    let n = min(val.count, config.train.valImages)
    let chunk = config.train.microbatch
    return try stride(from: 0, to: n, by: chunk).map { start in
      try Microbatch.load(Array(start..<min(n, start + chunk)), from: val, objective: model.config.objective,
                          maskSeed: Microbatch.maskSeed(seed: 0x7A1, step: start, micro: 0))
    }
  }

  /// Records the validation loss from each microbatch's loss (summed in order, image-weighted).
  @discardableResult
  public func finishValidation(losses: [Double], of batches: [Microbatch]) -> Double {
    var total = 0.0
    for (loss, mb) in zip(losses, batches) { total += loss * Double(mb.count) }
    lastValLoss = total / Double(batches.reduce(0) { $0 + $1.count })
    return lastValLoss!
  }

  /// Mean loss over the validation microbatches, computed here; nil without a val split.
  public func validationLoss() throws -> Double? {
    let batches = try validationMicrobatches()
    guard !batches.isEmpty else { return nil }
    return finishValidation(losses: batches.map { Gradient.loss(model: model, microbatch: $0) }, of: batches)
  }

  /// Whether the train command validates after completing step s.
  public func validationDue(afterStep s: Int) -> Bool {
    (config.train.valEvery > 0 && s % config.train.valEvery == 0) || s == config.train.steps
  }

  /// The state a checkpoint records now.
  public func state() -> Checkpoint.State {
    let pos = order.position(ofStep: step, batch: config.train.batch)
    return Checkpoint.State(
      step: step, dataEpoch: pos.epoch, dataOffset: pos.offset, seed: config.train.seed, config: config,
      model: model.config, store: store.path, palette: store.manifest.palette, checksums: [:],
      loss: lastLoss, valLoss: lastValLoss, numerics: numerics?.fingerprint, reproducible: numerics?.reproducible,
      tokenizer: store.manifest.tokenKind.kind == .vqvae ? store.manifest.tokenizer : nil)
  }

  /// Writes a checkpoint of the current step.
  @discardableResult
  public func checkpoint(runDir: String) throws -> String {
    try Checkpoint.write(runDir: runDir, state: state(), model: model, optimizer: optimizer, keep: config.checkpoint.keep)
  }
}
