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
final class EmulatedWork {
  let parameterCount: Int
  private var bodies: [RunConfig.GradientCodecKind: Data] = [:]

  init(parameterCount: Int) { self.parameterCount = parameterCount }

  /// The encoded gradient for a codec (computed the first time it is asked for).
  func gradient(_ codec: RunConfig.GradientCodecKind) -> Data {
    if let b = bodies[codec] { return b }
    var rng = SeededRandom(seed: 0xE4_0A7E)
    var values = [Float](repeating: 0, count: parameterCount)
    for i in 0..<parameterCount {
      // Box-Muller from two uniforms in (0, 1]
      let u = Double(rng.next() >> 11 + 1) * 0x1p-53, v = Double(rng.next() >> 11) * 0x1p-53
      values[i] = Float(1e-3 * (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
    var residual = [Float](repeating: 0, count: parameterCount)
    let body = codec == .bf16
      ? GradientCodec.encodeBF16(values, residual: &residual, count: parameterCount)
      : GradientCodec.encode(values, count: parameterCount)
    bodies[codec] = body
    return body
  }

  /// The result of a task, at once: a gradient (losses of 1 nat per microbatch), a validation
  /// loss, or features of zeros.
  func result(_ t: Wire.Task, codec: RunConfig.GradientCodecKind, config: ModelConfig, runHash: UInt64, version: UInt64) -> Message {
    var body = Data()
    var losses: [Double] = []
    switch t.kind {
    case .gradient:
      body = gradient(codec)
      losses = Array(repeating: 1, count: t.microbatches)
    case .validation:
      losses = [1]
    case .features:
      let n = (min(max(t.deepest ?? config.layers, 0), config.layers) + 1) * t.count * config.embd
      body = [Float](repeating: 0, count: n).withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: n) }
    }
    let meta = Wire.Result(id: t.id, kind: t.kind, step: t.step, micro: t.micro, losses: losses, seconds: 0)
    return Message(.result, runHash: runHash, version: version, meta: meta, body: body)
  }
}
