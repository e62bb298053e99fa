import Foundation
import IGPTTraining

/// The work at one parameter version (= completed steps): the validation microbatches due at
/// that step, then the gradient blocks of the next step, each a task with its tokens.
struct TrainingPhase {
  struct Task {
    var meta: Wire.Task
    var body: Data
    /// Gradient tasks: the block of the step's tree it sums.
    var block: GradientTree.Node?
  }

  let step: Int
  let firstId: UInt64
  /// Tasks by id, and the ids in hand-out order.
  private(set) var tasks: [UInt64: Task] = [:]
  private(set) var order: [UInt64] = []
  /// The workers its blocks were sized for.
  let workers: Int
  let validating: Bool
  let training: Bool
  var validationLosses: [Double?]

  /// The phase at `run`'s step; ids from `firstId`; blocks sized for `workers` workers.
  init(run: TrainingRun, validation: [Microbatch], firstId: UInt64, workers: Int, maxBlock: Int? = nil) throws {
    let trainer = run.trainer
    step = trainer.step
    self.firstId = firstId
    self.workers = max(1, workers)
    validating = !validation.isEmpty && run.validationDue(afterStep: step)
    training = !run.isFinished
    validationLosses = validating ? Array(repeating: nil, count: validation.count) : []
    var id = firstId
    func add(_ meta: Wire.Task, _ body: Data, block: GradientTree.Node? = nil) {
      tasks[meta.id] = Task(meta: meta, body: body, block: block)
      order.append(meta.id)
      id += 1
    }
    if validating {
      for (i, mb) in validation.enumerated() {
        add(Wire.Task(id: id, kind: .validation, step: step, micro: i, count: mb.count, length: mb.length, scale: 1, hasMask: !mb.mask.isEmpty),
            Wire.Task.body([mb]))
      }
    }
    if training {
      let tree = trainer.gradientTree
      let scale = Float(trainer.config.train.microbatch) / Float(trainer.config.train.batch)
      for block in tree.blocks(size: min(tree.blockSize(workers: workers), maxBlock ?? .max)) {
        let r = tree.range(block)
        let mbs = try r.map { try trainer.microbatch(step: step, micro: $0) }
        add(Wire.Task(id: id, kind: .gradient, step: step, micro: r.lowerBound, count: mbs[0].count, length: mbs[0].length, scale: scale,
                      hasMask: !mbs[0].mask.isEmpty, microbatches: r.count),
            Wire.Task.body(mbs), block: block)
      }
    }
  }

  var ids: [UInt64] { order }
  var nextId: UInt64 { firstId + UInt64(order.count) }
  subscript(id: UInt64) -> Task? { tasks[id] }
  /// The gradient task summing `block`.
  func task(for block: GradientTree.Node) -> UInt64? { order.first { tasks[$0]?.block == block } }
  var validationComplete: Bool { validationLosses.allSatisfy { $0 != nil } }
}
