import Foundation
import IGPTTraining

/// The parameter server of a cluster run: sums the step's gradient in its tree from the blocks
/// workers return, in whatever order, holding a bounded number of partial sums; serves the
/// parameters; applies the update exactly as `igpt train` does.
final class ParameterServer {
  let trainer: Trainer
  let codec: RunConfig.GradientCodecKind
  let reduction: GradientReduction
  /// The scaled loss of each microbatch of the step (summed in microbatch order at the end).
  private var losses: [Double?]
  /// The framed params message of the current version (nil: not framed yet).
  private var framedParameters: Data?
  /// Seconds spent decoding and summing gradients and encoding parameters this step.
  private(set) var transferSeconds = 0.0

  init(trainer: Trainer, codec: RunConfig.GradientCodecKind) {
    self.trainer = trainer
    self.codec = codec
    let tree = trainer.gradientTree
    reduction = GradientReduction(tree: tree, parameterCount: trainer.model.parameterCount, output: trainer.optimizer.gradient,
                                  capacity: GradientReduction.boundedCapacity(tree))
    losses = Array(repeating: nil, count: tree.count)
  }

  var tree: GradientTree { reduction.tree }
  var isComplete: Bool { reduction.isComplete }
  var scale: Float { Float(trainer.config.train.microbatch) / Float(trainer.config.train.batch) }

  /// A new step: nothing summed yet.
  func beginStep() {
    reduction.reset()
    losses = Array(repeating: nil, count: tree.count)
    transferSeconds = 0
  }

  /// Whether every microbatch's loss is in (the step's gradient is with the shards).
  var lossesComplete: Bool { losses.allSatisfy { $0 != nil } }

  /// The step's loss: the microbatches' in microbatch order.
  var stepLoss: Double { losses.reduce(0.0) { $0 + ($1 ?? .nan) } }

  /// Checks a block's losses against the block; records them (when `record`).
  func checkLosses(block: GradientTree.Node, _ blockLosses: [Double], record: Bool) throws {
    let range = tree.range(block)
    guard blockLosses.count == range.count, blockLosses.allSatisfy(\.isFinite) else {
      throw ProtocolError("gradient result with \(blockLosses.count) losses for \(range.count) microbatches, or a non-finite one")
    }
    if record { for (i, l) in zip(range, blockLosses) { losses[i] = l * Double(scale) } }
  }

  /// Adds a block's gradient (an encoded body) and its microbatches' losses.
  func add(block: GradientTree.Node, body: Data, losses blockLosses: [Double]) throws -> GradientReduction.Outcome {
    try checkLosses(block: block, blockLosses, record: false)
    let range = tree.range(block)
    guard body.first == codec.code else { throw ProtocolError("gradient not in the run's codec (\(codec))") }
    let start = Date()
    defer { transferSeconds += Date().timeIntervalSince(start) }
    let buffer = reduction.scratch()
    do { try GradientCodec.decode(body, into: buffer, count: trainer.model.parameterCount) } catch {
      reduction.recycle(buffer)
      throw error
    }
    let outcome = reduction.add(block, buffer: buffer)
    if case .accepted = outcome {
      for (i, l) in zip(range, blockLosses) { losses[i] = l * Double(scale) }
    }
    return outcome
  }

  /// The params message of the current version, framed once per version (each worker gets
  /// the same bytes: no copy or checksum per worker).
  func parametersMessage(runHash: UInt64) -> Data {
    if let framedParameters { return framedParameters }
    let start = Date()
    let body = GradientCodec.encode(trainer.model.params, count: trainer.model.parameterCount)
    let m = Message(.params, runHash: runHash, version: UInt64(trainer.step), body: body).encode()
    transferSeconds += Date().timeIntervalSince(start)
    framedParameters = m
    return m
  }

  /// Applies the summed gradient: the step's loss is the microbatches' in microbatch order.
  func applyUpdate() -> Trainer.StepResult {
    precondition(isComplete, "update before the step's gradient is complete")
    framedParameters = nil
    return trainer.applyUpdate(loss: stepLoss)
  }
}
