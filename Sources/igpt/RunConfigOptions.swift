import ArgumentParser
import IGPTTraining

/// The run-config flags `train` and `coordinator` share: a YAML file and its command-line overrides.
struct RunConfigOptions: ParsableArguments {
  @Option(help: "YAML run config (see configs/).") var config: String
  @Option(help: "Token store (overrides data.store).") var data: String?
  @Option(help: "Total steps (overrides train.steps; the learning-rate schedule spans them).") var steps: Int?
  @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every N steps (overrides checkpoint.every).")
  var checkpointEvery: Int?
  @Option(help: "Global batch (overrides train.batch; the microbatch shrinks to fit).") var batch: Int?
  @Option(help: "Peak learning rate (overrides train.lr).") var lr: Double?
  @Option(help: "Seed (overrides train.seed).") var seed: UInt64?
  @Option(help: "Threads (overrides train.threads).") var threads: Int?
  @OptionGroup var memory: MemoryOption

  /// The config file with the overrides applied, validated.
  func load() throws -> RunConfig {
    try memory.apply()
    var c = try RunConfig.load(path: config)
    if let data { c.data.store = data }
    if let steps { c.train.steps = steps }
    if let checkpointEvery { c.checkpoint.every = checkpointEvery }
    if let batch {
      c.train.batch = batch
      if batch % c.train.microbatch != 0 { c.train.microbatch = gcd(batch, c.train.microbatch) }
    }
    if let lr { c.train.lr = lr }
    if let seed { c.train.seed = seed }
    if let threads { c.train.threads = threads }
    try c.validate(name: config)
    guard !c.data.store.isEmpty else { throw CleanError("\(config): data.store is not set (or give --data)") }
    return c
  }

  private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
