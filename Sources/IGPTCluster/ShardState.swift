import Foundation
import IGPTTraining

/// What one parameter-server shard holds and does, without sockets: its slice of the parameter
/// slab and of both AdamW moments, the step's gradient over that slice summed in the step's
/// tree from the blocks workers push (any order, duplicates refused), the partial sums of
/// squares of its norm chunks, and the AdamW update of its slice once the coordinator has
/// decided the clip from every shard's partials.
///
/// Every operation is element by element or per norm chunk, so K shards together compute the
/// bytes one `igpt train` process computes (ShardStateTests).
final class ShardState {
  let plan: ShardPlan
  let index: Int
  let elements: Range<Int>
  let params: UnsafeMutablePointer<Float>
  let optimizer: Optimizer
  let reduction: GradientReduction
  /// The parameter version the slice is at (= updates applied = training steps done).
  private(set) var version: UInt64 = 0
  private var payload: (version: UInt64, data: Data)?

  init(plan: ShardPlan, index: Int, tree: GradientTree) {
    self.plan = plan
    self.index = index
    elements = plan.elements(index)
    params = .allocate(capacity: max(1, elements.count))
    params.initialize(repeating: 0, count: max(1, elements.count))
    optimizer = Optimizer(count: elements.count)
    // No capacity bound: a shard that evicted a partial sum would have to have its microbatches
    // computed again, which only the coordinator can order. A slice's partial sums take at most
    // M x 1/K of a gradient (the coordinator's bound is log2 M + 2 whole gradients).
    reduction = GradientReduction(tree: tree, parameterCount: elements.count, output: optimizer.gradient)
  }

  deinit { params.deallocate() }

  var count: Int { elements.count }
  var isComplete: Bool { reduction.isComplete }

  /// The slab of a state part: 0 the parameters, 1 and 2 the moments.
  func slab(_ part: Int) -> UnsafeMutablePointer<Float> { [params, optimizer.m, optimizer.v][part] }

  /// Decodes one part of the slice's state (a new run's, or a checkpoint's) in place.
  func restore(part: Int, body: Data) throws { try GradientCodec.decode(body, into: slab(part), count: count) }

  /// Every part restored: the slice is at `version` after `steps` updates, and a step begins.
  func restored(steps: Int, version: UInt64) {
    optimizer.steps = steps
    self.version = version
    payload = nil
    reduction.reset()
  }

  /// Adds a block's gradient over this slice (an encoded body of `count` values).
  func add(block: GradientTree.Node, body: Data) throws -> GradientReduction.Outcome {
    let buffer = reduction.scratch()
    do { try GradientCodec.decode(body, into: buffer, count: count) } catch {
      reduction.recycle(buffer)
      throw error
    }
    return reduction.add(block, buffer: buffer)
  }

  /// The sums of squares of the complete step gradient over this shard's norm chunks, in order.
  func normPartials() -> [Double] {
    precondition(isComplete, "norm partials before the step's gradient is complete")
    return optimizer.squaredNormPartials(chunks: plan.chunks(index), total: plan.total, offset: elements.lowerBound)
  }

  /// Applies the update the coordinator decided (the clip from every shard's partials): the
  /// slice moves to the next version and a new step begins.
  func update(learningRate: Double, gradScale: Float, config t: RunConfig.Train) {
    precondition(isComplete, "update before the step's gradient is complete")
    optimizer.apply(params: params, learningRate: learningRate, gradScale: gradScale, beta1: t.beta1, beta2: t.beta2,
                    weightDecay: t.weightDecay)
    version += 1
    reduction.reset()
  }

  /// The params message of the slice at its version, framed once per version (every worker
  /// gets the same bytes).
  func parametersMessage(runHash: UInt64) -> Data {
    if let payload, payload.version == version { return payload.data }
    let d = Message(.params, runHash: runHash, version: version, body: GradientCodec.encode(params, count: count)).encode()
    payload = (version, d)
    return d
  }
}
