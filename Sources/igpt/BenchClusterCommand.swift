import ArgumentParser
import Foundation
import IGPTCluster
import IGPTData
import IGPTModel

/// `igpt bench-cluster`: the cluster's own cost, measured with emulated workers that compute
/// nothing, so the numbers say where the coordinator (the parameter server) stops scaling.
struct BenchClusterCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-cluster",
    abstract: "Capacity benchmark: a real coordinator and N emulated workers on loopback; one JSON line per setting.",
    discussion: """
      Each setting starts `igpt coordinator` and N `igpt worker --emulate` processes on loopback: the workers answer every task at once with a precomputed gradient of the model's size (no model compute), so what is timed is the cluster's own work: tasks out, gradients in (received, decoded, summed in the step's tree), the update, parameters out to every worker. The data is a synthetic 8x8 store (64 tokens, 16 colours); --preset takes a named model's layers, width and heads (its positions and palette are the store's, which changes the parameter count by well under 1%).

      Per setting: steps_per_s and the step-time split (the first step, planned before all workers joined, is left out), gradient_gb_per_s (gradient bytes the coordinator received per second), bytes_per_step (in and out), gradients_per_step, coordinator_peak_rss_mb (its whole-process peak, from wait4). Everything shares this host's cores: on a small host the workers' receiving and sending competes with the coordinator.

      Example: igpt bench-cluster --layers 8 --embd 512 --workers 1,2,4,8,16 --steps 6
      """)

  @Option(help: "Emulated workers per setting, a comma-separated list.") var workers = "1,2,4,8,16"
  @Option(help: "Parameter-server shard processes per setting, a comma-separated list (0: the coordinator sums and serves).")
  var shards = "0"
  @Option(help: "A named model (igpt-s, igpt-m, igpt-l, cpu-small, ...): its layers, width and heads.") var preset: String?
  @Option(help: "Transformer blocks (without --preset).") var layers = 8
  @Option(help: "Embedding width (without --preset).") var embd = 512
  @Option(help: "Attention heads (without --preset).") var heads = 8
  @Option(help: "Gradient codecs, a comma-separated list of lossless and bf16.") var codec = "lossless"
  @Option(help: "Steps per setting (the first is not timed).") var steps = 6
  @Option(help: "Microbatches per step (one image each): the most gradient blocks a step can be split into.") var microbatches = 32
  @Option(help: "First loopback port (each setting uses the next).") var port = 5990
  @Option(help: "Keep the runs and logs in this directory (default: a temporary one, removed).") var keep: String?

  func validate() throws {
    if workerCounts.isEmpty || workerCounts.contains(where: { $0 < 1 || $0 > 256 }) { throw ValidationError("--workers \(workers): expected counts in 1...256, e.g. 1,2,4") }
    if shardCounts.isEmpty || shardCounts.contains(where: { $0 < 0 || $0 > 16 }) { throw ValidationError("--shards \(shards): expected counts in 0...16, e.g. 0,1,2") }
    if codecs.isEmpty { throw ValidationError("--codec \(codec): expected lossless, bf16 or both") }
    if steps < 2 { throw ValidationError("--steps must be at least 2 (the first is not timed)") }
    if microbatches < 1 || microbatches > 4096 { throw ValidationError("--microbatches must be in 1...4096") }
    if let preset, ModelConfig.presets[preset] == nil { throw ValidationError("--preset \(preset): one of \(ModelConfig.presets.keys.sorted().joined(separator: ", "))") }
  }

  var workerCounts: [Int] { Self.counts(workers) }
  var shardCounts: [Int] { Self.counts(shards) }
  static func counts(_ list: String) -> [Int] { list.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
  var codecs: [String] { codec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { ["lossless", "bf16"].contains($0) } }

  func run() throws {
    let shape = preset.map { ModelConfig.presets[$0]! }.map { ($0.layers, $0.embd, $0.heads) } ?? (layers, embd, heads)
    let dir = keep ?? NSTemporaryDirectory() + "igpt-bench-cluster-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { if keep == nil { try? FileManager.default.removeItem(atPath: dir) } }
    let store = try ClusterBench.syntheticStore(in: dir, images: max(256, 2 * microbatches))
    let model = ModelConfig(layers: shape.0, embd: shape.1, heads: shape.2, seq: 64, vocab: 16)
    try model.validate()
    logLine("igpt bench-cluster: \(shape.0) layers x \(shape.1), \(ParameterLayout(model).count) parameters, \(microbatches) microbatches per step, \(steps) steps per setting; logs in \(dir)")
    var next = port
    let count = ParameterLayout(model).count
    for c in codecs {
      let gradientBytes = EmulatedWork(parameterCount: count).gradient(c == "bf16" ? .bf16 : .lossless, 0..<count).count
      for k in shardCounts {
        for n in workerCounts {
          let setting = ClusterBench.Setting(workers: n, shards: k, codec: c, layers: shape.0, embd: shape.1, heads: shape.2,
                                             steps: steps, microbatches: microbatches, port: next)
          next += k + 1
          var r = try ClusterBench.run(setting, store: store, dir: dir + "/w\(n)-k\(k)-\(c)")
          r.gradientBytes = gradientBytes
          let data = try JSONSerialization.data(withJSONObject: r.json(setting, parameters: count), options: [.sortedKeys])
          print(String(decoding: data, as: UTF8.self))
          fflush(stdout)
        }
      }
    }
  }
}
