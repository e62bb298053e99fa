import Dispatch
import IGPTKernels

/// AdamW state for a parameter slab: both moments, the summed gradient of the current step, and
/// the step count. The coordinator of a cluster owns exactly this.
public final class Optimizer {
  public let count: Int
  public let m: UnsafeMutablePointer<Float>
  public let v: UnsafeMutablePointer<Float>
  /// The global batch's gradient (the root of the step's `GradientTree`).
  public let gradient: UnsafeMutablePointer<Float>
  /// Whether `gradient` is borrowed (the model's own gradient slab, for steps of one
  /// microbatch: one slab of parameter size less, 5.4 GB for igpt-l).
  public let sharesGradient: Bool
  /// Completed updates (AdamW's t after the next update is steps + 1).
  public var steps = 0

  /// `sharedGradient`: use this slab (count floats, owned by the caller and outliving the
  /// optimizer) as the step's gradient instead of allocating one.
  public init(count: Int, sharedGradient: UnsafeMutablePointer<Float>? = nil) {
    self.count = count
    m = .allocate(capacity: count)
    v = .allocate(capacity: count)
    m.initialize(repeating: 0, count: count)
    v.initialize(repeating: 0, count: count)
    if let sharedGradient {
      gradient = sharedGradient
      sharesGradient = true
    } else {
      gradient = .allocate(capacity: count)
      gradient.initialize(repeating: 0, count: count)
      sharesGradient = false
    }
  }

  deinit {
    m.deallocate()
    v.deallocate()
    if !sharesGradient { gradient.deallocate() }
  }

  public func zeroGradient() { gradient.update(repeating: 0, count: count) }

  /// gradient += g, element by element (the fixed-order microbatch sum). When g is the shared
  /// gradient slab itself (one microbatch per step), it already is the sum: nothing to add.
  public func accumulate(_ g: UnsafePointer<Float>) {
    if sharesGradient && UnsafePointer(gradient) == g { return }
    let acc = gradient
    Parallel.forChunks(count, align: 16) { _, r in
      for i in r { acc[i] += g[i] }
    }
  }

  /// The gradient norm's fixed chunks: a slab of `total` values cut in 16 (16-aligned), whatever
  /// the thread count or the number of parameter-server shards (`ShardPlan` cuts on them).
  public static let normChunks = 16

  public static func normChunk(_ c: Int, total: Int) -> Range<Int> { Parallel.chunkRange(c, of: normChunks, count: total, align: 16) }

  /// Sums of squares of the gradient (Double) over norm chunks `chunks` of a slab of `total`
  /// values, of which this optimizer holds the slice starting at `offset`: one per chunk.
  public func squaredNormPartials(chunks: Range<Int>, total: Int, offset: Int = 0) -> [Double] {
    var partial = [Double](repeating: 0, count: chunks.count)
    let g = SendablePointer(gradient)
    partial.withUnsafeMutableBufferPointer { p in
      let out = SendablePointer(p.baseAddress!)
      DispatchQueue.concurrentPerform(iterations: chunks.count) { j in
        var s = 0.0
        for i in Self.normChunk(chunks.lowerBound + j, total: total) { s += Double(g.pointer[i - offset]) * Double(g.pointer[i - offset]) }
        out.pointer[j] = s
      }
    }
    return partial
  }

  /// The L2 norm from every chunk's partial sum, added in chunk order.
  public static func norm(partials: [Double]) -> Double { partials.reduce(0, +).squareRoot() }

  /// L2 norm of the summed gradient, independent of the thread count (a coordinator may run
  /// with any) and of how the slab is sharded.
  public func gradientNorm() -> Double { Self.norm(partials: squaredNormPartials(chunks: 0..<Self.normChunks, total: count)) }

  /// The factor that clips a gradient of this norm to `clip` (0 = off).
  public static func clipScale(norm: Double, clip: Double) -> Float { clip > 0 && norm > clip ? Float(clip / norm) : 1 }

  /// Clips the summed gradient to `clip` (0 = off) and applies one AdamW update to params.
  /// Returns the gradient norm before clipping.
  @discardableResult
  public func update(params: UnsafeMutablePointer<Float>, learningRate: Double, clip: Double,
                     beta1: Double, beta2: Double, weightDecay: Double) -> Double {
    let norm = gradientNorm()
    apply(params: params, learningRate: learningRate, gradScale: Self.clipScale(norm: norm, clip: clip),
          beta1: beta1, beta2: beta2, weightDecay: weightDecay)
    return norm
  }

  /// One AdamW update of the gradient times `gradScale` (a shard's slice of the update whose
  /// clip the global norm decided).
  public func apply(params: UnsafeMutablePointer<Float>, learningRate: Double, gradScale: Float,
                    beta1: Double, beta2: Double, weightDecay: Double) {
    steps += 1
    AdamW.update(params: params, grads: gradient, m: m, v: v, count: count,
                 step: .init(learningRate: Float(learningRate), t: steps, beta1: Float(beta1),
                             beta2: Float(beta2), weightDecay: Float(weightDecay)),
                 gradScale: gradScale)
  }
}

/// A raw pointer handed to concurrent chunks that write disjoint elements.
struct SendablePointer<T>: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<T>
  init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}
