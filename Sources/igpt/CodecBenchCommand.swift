import ArgumentParser
import Foundation
import IGPTCluster
import IGPTData
import IGPTKernels
import IGPTTraining

/// `igpt bench-codec`: compression ratio and speed of the wire codecs on real gradients.
struct CodecBenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-codec",
    abstract: "Measure the gradient codecs (lossless shuffle+LZ4, bf16+LZ4) on real gradients; one JSON line each.",
    discussion: """
      Trains the config on this host for --warm-steps steps (so the gradients are those of a model that has started to learn), then encodes and decodes the gradient of the next microbatch --repeat times with each codec, and the parameters with the lossless one. MB/s counts the uncompressed float32 bytes.

      Example: igpt bench-codec --config configs/fashion-mnist-tiny.yaml
      """)

  @OptionGroup var options: RunConfigOptions
  @Option(name: .customLong("warm-steps"), help: "Training steps before measuring.") var warmSteps = 20
  @Option(help: "Timed encode/decode rounds per codec.") var `repeat` = 10

  func run() throws {
    let c = try options.load()
    Parallel.threads = c.train.threads > 0 ? c.train.threads : ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(1)
    let trainer = try Trainer(config: c, store: try TokenStore(path: c.data.store))
    for _ in 0..<warmSteps { try trainer.trainStep() }
    let mb = try trainer.microbatch(step: trainer.step, micro: 0)
    Gradient.compute(model: trainer.model, microbatch: mb, scale: 1)
    let n = trainer.model.parameterCount
    let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
    let residual = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer {
      out.deallocate()
      residual.deallocate()
    }
    func measure(_ what: String, _ source: UnsafePointer<Float>, encode: () -> Data) throws {
      var payload = Data()
      var encodeSeconds = Double.infinity
      var decodeSeconds = Double.infinity
      for _ in 0..<max(1, `repeat`) {
        residual.initialize(repeating: 0, count: n)
        var t = Date()
        payload = encode()
        encodeSeconds = min(encodeSeconds, Date().timeIntervalSince(t))
        t = Date()
        try GradientCodec.decode(payload, into: out, count: n)
        decodeSeconds = min(decodeSeconds, Date().timeIntervalSince(t))
      }
      var err = 0.0, norm = 0.0
      for i in 0..<n {
        err += Double(out[i] - source[i]) * Double(out[i] - source[i])
        norm += Double(source[i]) * Double(source[i])
      }
      let mb = Double(4 * n) / 1e6
      let line: [String: Any] = [
        "payload": what, "values": n, "raw_bytes": 4 * n, "encoded_bytes": payload.count,
        "ratio": Double(4 * n) / Double(payload.count), "encode_mb_s": mb / encodeSeconds, "decode_mb_s": mb / decodeSeconds,
        "relative_error": norm > 0 ? (err / norm).squareRoot() : 0, "threads": Parallel.threads, "step": trainer.step,
      ]
      print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
    let g = UnsafePointer(trainer.model.grads)
    try measure("gradient lossless", g) { GradientCodec.encode(g, count: n) }
    try measure("gradient bf16", g) { GradientCodec.encodeBF16(g, residual: residual, count: n) }
    let p = UnsafePointer(trainer.model.params)
    try measure("parameters lossless", p) { GradientCodec.encode(p, count: n) }
  }
}
