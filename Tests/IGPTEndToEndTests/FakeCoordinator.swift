import Foundation
import CZeroMQ
@testable import IGPTCluster
import IGPTKernels
@testable import IGPTModel
import IGPTTraining

/// A coordinator played by the test: a real ROUTER socket speaking the protocol by hand, so a
/// test can send a real `igpt worker` what no coordinator would (malformed messages, a welcome
/// in the middle of a job) and see exactly what it answers.
final class FakeCoordinator {
  let socket: ZMQSocket
  let runHash: UInt64 = 0xF00D

  init(port: Int, receiveHighWaterMark: Int32? = nil) throws {
    socket = try ZMQSocket(.router)
    if let hwm = receiveHighWaterMark { try socket.set(ZMQ_RCVHWM, hwm) }
    try socket.bind("tcp://127.0.0.1:\(port)")
  }

  deinit { socket.close() }

  /// The next message of one of `kinds` (others are skipped), with its sender; nil on timeout.
  func next(_ kinds: Set<Message.Kind>, timeout: Double = 20) -> (id: Data, message: Message)? {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      guard socket.poll(timeout: 0.05), let r = socket.receive(), r.frames.count == 2,
        let m = try? Message.decode(r.frames[1])
      else { continue }
      if kinds.contains(m.kind) { return (r.frames[0], m) }
    }
    return nil
  }

  func send(_ m: Message, to id: Data) { _ = socket.send([id, m.encode()]) }

  /// A welcome for `model` that accepts the worker's numerics as they are (policy any).
  func welcome(_ model: ModelConfig, threads: Int = 1, codec: RunConfig.GradientCodecKind = .lossless, interval: Double = 0.2,
               misses: Int = 50) throws -> Message {
    // a fingerprint by hand: measuring one here would change Parallel.threads under other tests
    let fingerprint = NumericsFingerprint(openblas: "fake", openblasCore: "fake", kernelCPU: "fake", threads: threads,
                                          shape: .init(model), probe: "0000000000000000")
    let w = Wire.Welcome(runHash: runHash, model: model, threads: threads, codec: codec, heartbeatInterval: interval,
                         heartbeatMisses: misses, step: 0, steps: 10, recompute: false, numerics: fingerprint, policy: .any)
    return Message(.welcome, runHash: runHash, meta: w)
  }

  /// Parameters at `version` for a model of `count` parameters (seeded, N(0, 0.02): gradients
  /// as incompressible as real ones).
  func params(count: Int, version: UInt64 = 0) -> Message {
    var rng = SeededRandom(seed: 9)
    let p = (0..<count).map { _ in Float(rng.normal() * 0.02) }
    return Message(.params, runHash: runHash, version: version, body: p.withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: count) })
  }

  /// A gradient (or features) task of `count` images of token 1 (mask: every 4th position).
  func task(id: UInt64, kind: Wire.Task.Kind = .gradient, count: Int, length: Int, version: UInt64 = 0) -> Message {
    let meta = Wire.Task(id: id, kind: kind, step: 0, micro: Int(id), count: count, length: length, scale: 1, hasMask: false)
    return Message(.task, runHash: runHash, version: version, meta: meta,
                   body: Wire.Task.body(tokens: [Int32](repeating: 1, count: count * length), mask: []))
  }
}
