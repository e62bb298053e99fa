import Foundation
import IGPTModel

/// What a training process will need, checked before anything is built: counts the data
/// allows, and memory (`MemoryBudget`) for the model, the optimizer, the step's gradient sums
/// and, where gradients are computed, the activations of one microbatch.
public enum ResourcePlan {
  /// `computes`: this process runs forward and backward (`igpt train`); a coordinator only
  /// sums and applies, holding up to log2 M + 2 partial sums and the parameter payload.
  public static func training(_ c: RunConfig, model: ModelConfig, trainImages: Int, computes: Bool) throws {
    guard c.train.batch <= trainImages else {
      throw ConfigError("train.batch \(c.train.batch) is larger than the train split (\(trainImages) images)")
    }
    let p = 4 * MemoryBudget.parameterFloats(model)
    let m = c.train.batch / c.train.microbatch
    let depth = Double(GradientTree(count: max(1, m)).depth)
    var bytes = MemoryBudget.model(model) + 2 * p  // parameters, gradients, both moments
    if m > 1 { bytes += p }  // the step's sum (one microbatch sums into the gradients)
    if computes {
      let threads = c.train.threads > 0 ? c.train.threads : ProcessInfo.processInfo.activeProcessorCount
      bytes += max(0, depth - 1) * p
      bytes += MemoryBudget.activations(model, batch: c.train.microbatch, seq: model.seq, threads: threads, recompute: c.train.recompute)
    } else {
      bytes += (depth + 3) * p
    }
    try MemoryBudget.check(bytes, for: String(format: "training %.3g parameters (microbatch %d of %d positions)", p / 4, c.train.microbatch, model.seq))
  }
}
