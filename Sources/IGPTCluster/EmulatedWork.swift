import Foundation
import IGPTKernels
import IGPTModel
import IGPTTraining

/// What an emulated worker (`igpt worker --emulate`, used by `igpt bench-cluster`) answers:
/// every task at once, gradients with one precomputed payload of the model's size, so that what
/// a benchmark measures is the cluster's own cost (messages, decoding, summing, the update,
/// parameters out), not the model's compute.
///
/// The payload is a fixed pseudo-random gradient (normal, scale 1e-3, as real gradients are
/// small) encoded once per codec: it compresses like a real one (sign and exponent bytes
/// repeat, mantissas do not), not like zeros.
public final class EmulatedWork {
  public let parameterCount: Int
  private lazy var values: [Float] = {
    var rng = SeededRandom(seed: 0xE4_0A7E)
    return (0..<parameterCount).map { _ in
      // Box-Muller from two uniforms in (0, 1]
      let u = Double(rng.next() >> 11 + 1) * 0x1p-53, v = Double(rng.next() >> 11) * 0x1p-53
      return Float(1e-3 * (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
  }()
  private var bodies: [String: Data] = [:]

  public init(parameterCount: Int) { self.parameterCount = parameterCount }

  /// The encoded gradient over `range` for a codec (computed the first time it is asked for).
  public func gradient(_ codec: RunConfig.GradientCodecKind, _ range: Range<Int>) -> Data {
    let key = "\(codec) \(range)"
    if let b = bodies[key] { return b }
    var residual = [Float](repeating: 0, count: max(1, range.count))
    let body = values.withUnsafeBufferPointer { v in
      codec == .bf16
        ? GradientCodec.encodeBF16(v.baseAddress! + range.lowerBound, residual: &residual, count: range.count)
        : GradientCodec.encode(v.baseAddress! + range.lowerBound, count: range.count)
    }
    bodies[key] = body
    return body
  }

  /// The result of a task, at once: a gradient (losses of 1 nat per microbatch), a validation
  /// loss, or features of zeros.
  func result(_ t: Wire.Task, codec: RunConfig.GradientCodecKind, config: ModelConfig, runHash: UInt64, version: UInt64,
              slices: [Range<Int>] = []) -> (message: Message, slices: [Data]) {
    var body = Data()
    var losses: [Double] = []
    var pushes: [Data] = []
    switch t.kind {
    case .gradient:
      if slices.isEmpty { body = gradient(codec, 0..<parameterCount) } else { pushes = slices.map { gradient(codec, $0) } }
      losses = Array(repeating: 1, count: t.microbatches)
    case .validation:
      losses = [1]
    case .features:
      let n = (min(max(t.deepest ?? config.layers, 0), config.layers) + 1) * t.count * config.embd
      body = [Float](repeating: 0, count: n).withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: n) }
    }
    let meta = Wire.Result(id: t.id, kind: t.kind, step: t.step, micro: t.micro, losses: losses, seconds: 0)
    return (Message(.result, runHash: runHash, version: version, meta: meta, body: body), pushes)
  }
}
