import Foundation
import IGPTKernels
import IGPTModel
import IGPTTraining

/// One task's computation on a worker, off its socket thread: a validation loss, a feature
/// pass, or the gradient of a block of microbatches summed in the step's tree (the block's
/// subtree: the same bytes as the coordinator or `igpt train` would sum), sent as one gradient.
struct WorkerJob: @unchecked Sendable {
  let model: IGPT
  /// bf16 error feedback: what rounding left out of earlier gradients (nil = lossless).
  let residual: UnsafeMutablePointer<Float>?
  let codec: RunConfig.GradientCodecKind
  let runHash: UInt64
  let version: UInt64
  let task: Wire.Task
  let microbatches: [Microbatch]
  /// Fault injection: hang before computing microbatch i of the task (the socket thread keeps heartbeating).
  let stallAt: Int?
  /// The parameter-server shards' slices of the slab: a gradient is encoded slice by slice (one
  /// push to each shard) and the result to the coordinator has an empty body. Empty: one gradient.
  var slices: [Range<Int>] = []

  /// The result for the coordinator, and the gradient's slices for the shards (if sharded).
  func run() -> (message: Message, slices: [Data]) {
    let start = Date()
    var body = Data()
    var losses: [Double] = []
    var pushes: [Data] = []
    switch task.kind {
    case .gradient:
      let sum = blockGradient(losses: &losses)
      let parts = slices.isEmpty ? [0..<model.parameterCount] : slices
      let encoded = parts.map { r in
        codec == .bf16 && residual != nil
          ? GradientCodec.encodeBF16(sum.pointer + r.lowerBound, residual: residual! + r.lowerBound, count: r.count)
          : GradientCodec.encode(sum.pointer + r.lowerBound, count: r.count)
      }
      sum.release()
      if slices.isEmpty { body = encoded[0] } else { pushes = encoded }
    case .validation:
      stallIfAsked(0)
      losses = [Gradient.loss(model: model, microbatch: microbatches[0])]
    case .features:
      stallIfAsked(0)
      body = features(microbatches[0])
    }
    let meta = Wire.Result(id: task.id, kind: task.kind, step: task.step, micro: task.micro, losses: losses,
                           seconds: Date().timeIntervalSince(start))
    return (Message(.result, runHash: runHash, version: version, meta: meta, body: body), pushes)
  }

  private func stallIfAsked(_ i: Int) {
    while let s = stallAt, i >= s { Thread.sleep(forTimeInterval: 3600) }
  }

  /// A slab holding the block's summed gradient (the model's own for a single microbatch).
  struct Sum {
    let pointer: UnsafeMutablePointer<Float>
    let owned: Bool
    func release() { if owned { pointer.deallocate() } }
  }

  /// Each microbatch's gradient into model.grads, summed in the block's subtree.
  private func blockGradient(losses: inout [Double]) -> Sum {
    if microbatches.count == 1 {
      stallIfAsked(0)
      losses = [Gradient.compute(model: model, microbatch: microbatches[0], scale: task.scale)]
      return Sum(pointer: model.grads, owned: false)
    }
    let out = UnsafeMutablePointer<Float>.allocate(capacity: model.parameterCount)
    let tree = GradientTree(count: microbatches.count)
    let reduction = GradientReduction(tree: tree, parameterCount: model.parameterCount, output: out)
    for (i, mb) in microbatches.enumerated() {
      stallIfAsked(i)
      losses.append(Gradient.compute(model: model, microbatch: mb, scale: task.scale))
      reduction.add(tree.leaf(i), values: model.grads)
    }
    return Sum(pointer: out, owned: true)
  }

  /// (deepest + 1) layers x count x C, layer-major, encoded losslessly.
  private func features(_ mb: Microbatch) -> Data {
    let deepest = min(max(task.deepest ?? model.config.layers, 0), model.config.layers)
    let f = mb.tokens.withUnsafeBufferPointer { tk in
      mb.mask.withUnsafeBufferPointer { mk in
        model.allFeatures(tokens: tk.baseAddress!, mask: mb.mask.isEmpty ? nil : mk.baseAddress, batch: mb.count, through: deepest)
      }
    }.flatMap { $0 }
    return f.withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: f.count) }
  }
}
