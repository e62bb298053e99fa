import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTTraining

/// `igpt info`: what this process computes with (BLAS kernels, threads, CPU features) and its
/// numerics fingerprint.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Show the BLAS kernels, CPU features and numerics fingerprint igpt runs with.",
    discussion: """
      The numerics fingerprint is what decides the bytes this process computes: OpenBLAS's build and core type, the arithmetic igpt's kernels were compiled with (kernel_arithmetic: fused multiply-add on every target with FMA, separate multiply and add on the x86-64 baseline; targets with the same arithmetic compute the same bytes), the thread count, and a hash of one small training step at the model's widths. Two hosts with the same fingerprint compute the same bytes; a cluster run pins or refuses workers whose fingerprint is not the run's (cluster.numerics). Without --config the bench shape (256 wide, 8 heads, 196 positions, 16 colours) is used.

      Example: igpt info --config configs/fashion-mnist-tiny.yaml --json
      """)

  @Flag(help: "Print one JSON object instead of text.")
  var json = false
  @Option(help: "Fingerprint at this run config's widths (its store gives seq and vocab when the config does not).")
  var config: String?
  @Option(help: "Threads (default: the config's train.threads, else all cores).")
  var threads: Int?

  func run() throws {
    var shape = NumericsFingerprint.defaultShape
    var runThreads = 0
    if let config {
      let c = try RunConfig.load(path: config)
      runThreads = c.train.threads
      if let seq = c.model.seq, let vocab = c.model.vocab {
        shape = try c.modelConfig(storeSequenceLength: seq, storeVocab: vocab)
      } else {
        let store = try TokenStore(path: c.data.store)
        shape = try c.modelConfig(storeSequenceLength: store.manifest.sequenceLength, storeVocab: store.vocab)
      }
    }
    let n = threads ?? (runThreads > 0 ? runThreads : ProcessInfo.processInfo.activeProcessorCount)
    if n < 1 { throw ValidationError("--threads must be at least 1") }
    BLAS.setThreads(1)
    let fingerprint = try NumericsFingerprint.measure(shape, threads: n)
    let env = ProcessInfo.processInfo.environment[OpenBLASCoreType.variable]
    let flags = OpenBLASCoreType.cpuFlags()
    let info: [String: Any] = [
      "openblas_core": BLAS.coreName,
      "openblas_coretype_env": env ?? "",
      "chosen_coretype": OpenBLASCoreType.choose(flags: flags) ?? "",
      "runnable_coretypes": OpenBLASCoreType.runnable(flags: flags).joined(separator: ","),
      "cpus": ProcessInfo.processInfo.activeProcessorCount,
      "kernel_cpu": KernelCPU.name,
      "kernel_arithmetic": KernelCPU.arithmetic,
      "numerics": try JSONSerialization.jsonObject(with: JSONEncoder().encode(fingerprint)),
    ]
    if json {
      let data = try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      for key in info.keys.sorted() where key != "numerics" { print("\(key): \(info[key]!)") }
      print("numerics: \(fingerprint.summary)")
      print("numerics shape: embd \(shape.embd), heads \(shape.heads), seq \(shape.seq), vocab \(shape.vocab), \(shape.objective.rawValue)")
    }
  }
}
