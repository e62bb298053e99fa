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

  /// L2 norm of the summed gradient: Double partial sums over 16 fixed chunks added in order, so
  /// the result does not depend on the thread count (a coordinator may run with any).
  public func gradientNorm() -> Double {
    let chunks = 16
    var partial = [Double](repeating: 0, count: chunks)
    let g = SendablePointer(gradient)
    let n = count
    partial.withUnsafeMutableBufferPointer { p in
      let out = SendablePointer(p.baseAddress!)
      DispatchQueue.concurrentPerform(iterations: chunks) { c in
        var s = 0.0
        for i in Parallel.chunkRange(c, of: chunks, count: n, align: 16) { s += Double(g.pointer[i]) * Double(g.pointer[i]) }
        out.pointer[c] = s
      }
    }
    return partial.reduce(0, +).squareRoot()
  }

  /// Clips the summed gradient to `clip` (0 = off) and applies one AdamW update to params.
  /// Returns the gradient norm before clipping.
  @discardableResult
  public func update(params: UnsafeMutablePointer<Float>, learningRate: Double, clip: Double,
                     beta1: Double, beta2: Double, weightDecay: Double) -> Double {
    let norm = gradientNorm()
    let scale: Float = clip > 0 && norm > clip ? Float(clip / norm) : 1
    steps += 1
    AdamW.update(params: params, grads: gradient, m: m, v: v, count: count,
                 step: .init(learningRate: Float(learningRate), t: steps, beta1: Float(beta1),
                             beta2: Float(beta2), weightDecay: Float(weightDecay)),
                 gradScale: scale)
    return norm
  }
}

/// A raw pointer handed to concurrent chunks that write disjoint elements.
struct SendablePointer<T>: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<T>
  init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}
