import ArgumentParser
import Foundation
import IGPTCluster
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt coordinator`: the parameter server and scheduler of a cluster run.
struct CoordinatorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coordinator",
    abstract: "Run a cluster's parameter server: workers compute the gradients, it applies them.",
    discussion: """
      Owns the parameters, AdamW state, data order and schedule; hands each step's fixed microbatches (with their tokens: workers need no dataset) to the workers that connect, sums their gradients in the step's fixed tree (a worker sums a block of microbatches itself and sends one gradient) and applies the update, so the model is byte-identical to `igpt train` with the same config. Checkpoints, metrics.jsonl and --resume work as in `igpt train`. SIGINT or SIGTERM writes a checkpoint and exits; workers wait and reconnect when it is restarted with --resume.

      Example: igpt coordinator --config configs/fashion-mnist-tiny.yaml --run runs/c --bind tcp://127.0.0.1:5555
               igpt worker --connect tcp://127.0.0.1:5555   (on each host)
      """)

  @OptionGroup var options: RunConfigOptions
  @Option(name: .customLong("run"), help: "Run directory (metrics and checkpoints).") var runDir: String
  @Option(help: "ZeroMQ endpoint to listen on, e.g. tcp://0.0.0.0:5555 or tcp://127.0.0.1:5555.") var bind: String
  @Flag(help: "Continue from the newest intact checkpoint in --run.") var resume = false
  @Option(name: .customLong("secret-key"), help: "The coordinator's CURVE secret key file: encrypt all traffic (igpt keys generate; or cluster.secret_key).")
  var secretKey: String?
  @Option(help: "Public keys allowed to connect: a .pub file or a directory of them (or cluster.allow). Re-read on SIGHUP.")
  var allow: String?
  @Flag(help: "Allow --bind on a non-loopback address without keys: traffic is unencrypted and anyone who reaches the port can join.")
  var insecure = false
  @Option(name: .customLong("debug-max-block"), help: .hidden) var maxBlock: Int?
  @Option(name: .customLong("wait-for"), help: "Hand out no work until this many workers have joined (then any number may come and go).")
  var waitFor = 0
  @Option(help: "Parameter-server shards (igpt server processes) that hold the parameters, sum the gradients and apply the updates (1-16; default 0: this process does).")
  var shards = 0

  func run() throws {
    guard (0...16).contains(shards) else { throw CleanError("--shards must be in 0...16 (one per gradient-norm chunk at most)") }
    let c = try options.load()
    Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
    BLAS.setThreads(1)
    guard bind.hasPrefix("tcp://") || bind.hasPrefix("ipc://") || bind.hasPrefix("inproc://") else {
      throw CleanError("--bind \(bind): expected tcp://ADDRESS:PORT")
    }
    let secretFile = secretKey ?? c.cluster.secretKey
    let allowPath = allow ?? c.cluster.allow
    guard (secretFile == nil) == (allowPath == nil) else {
      throw CleanError("give both --secret-key and --allow (cluster.secret_key and cluster.allow), or neither")
    }
    let curve = try secretFile.map { (secret: try CurveKey.load($0, secret: true), allow: allowPath!) }
    if let curve { _ = try ZAPHandler.readAllowList(curve.allow) }
    if curve == nil && !Self.isLoopback(bind) && !insecure {
      throw CleanError("--bind \(bind) is reachable from other hosts: without keys igpt binds only to loopback (127.0.0.1); add --insecure to accept unencrypted, unauthenticated workers")
    }
    // the numerics every worker computes with: this host's, cluster.openblas_core, or the one
    // the run recorded (this process may re-execute pinned to it)
    let run: TrainingRun
    do { run = try TrainingRun(config: c, runDir: runDir, resume: resume, end: c.train.steps, computes: false, log: { logLine(stamp($0)) }) } catch let e as ConfigError {
      throw CleanError(e.description)
    }
    let trainer = run.trainer
    if run.sampleDecoder == nil { run.sampleDecoder = try VQVAETokenDecoder.forStore(trainer.store) }
    if run.isFinished {
      logLine("already at step \(trainer.step) of \(c.train.steps): nothing to do")
      return
    }
    HangupSignal.install()
    var coordinatorOptions = Coordinator.Options(bind: bind, log: { logLine(stamp($0)) }, shouldStop: {
      guard StopSignal.received != 0 else { return false }
      StopSignal.acknowledge()  // it writes its checkpoint and exits
      return true
    })
    coordinatorOptions.curve = curve
    coordinatorOptions.maxBlock = maxBlock
    coordinatorOptions.waitForWorkers = waitFor
    coordinatorOptions.shards = shards
    coordinatorOptions.reloadRequested = { HangupSignal.take() }
    let coordinator = try Coordinator(run: run, options: coordinatorOptions)
    logLine(stamp("igpt coordinator: listening on \(coordinator.endpoint); run \(String(coordinator.runHash, radix: 16)), \(c.cluster.codec) gradients"))
    for line in run.openingLines { logLine(stamp(line)) }
    if let curve {
      logLine(stamp("CURVE: traffic encrypted, \(try ZAPHandler.readAllowList(curve.allow).count) allow-listed keys from \(curve.allow) (SIGHUP re-reads it); public key \(try curve.secret.publicKey().z85)"))
    }
    if insecure && curve == nil { logLine(stamp("warning: --insecure: traffic on \(coordinator.endpoint) is unencrypted and any peer that reaches it can join")) }
    coordinator.insecure = insecure && curve == nil
    switch try coordinator.run() {
    case .finished:
      print(String(format: "done: step %d, loss %.4f; checkpoints in %@", trainer.step, trainer.lastLoss ?? .nan,
                   (runDir as NSString).appendingPathComponent("checkpoints")))
    case .stopped:
      logLine(stamp("stopped by \(StopSignal.name) at step \(trainer.step); continue with --resume"))
      // checkpointed; a probe job may still be fitting on its own thread
      StopSignal.exitNow(0)
    }
  }
}

extension CoordinatorCommand {
  /// Whether an endpoint only accepts connections from this host.
  static func isLoopback(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    let rest = endpoint.dropFirst("tcp://".count)
    let host = rest.hasPrefix("[") ? String(rest.dropFirst().prefix { $0 != "]" }) : String(rest.prefix { $0 != ":" })
    return host == "localhost" || host == "::1" || host.hasPrefix("127.")
  }
}

/// A log line with the wall-clock time in front (cluster logs interleave several processes).
func stamp(_ s: String) -> String {
  let f = DateFormatter()
  f.dateFormat = "HH:mm:ss.SSS"
  return "\(f.string(from: Date())) \(s)"
}
