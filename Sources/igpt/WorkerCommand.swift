import ArgumentParser
import Foundation
import IGPTCluster
import IGPTTraining

/// `igpt worker`: a stateless gradient engine for a coordinator.
struct WorkerCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "worker",
    abstract: "Compute gradients for a coordinator (any number of workers, on any hosts).",
    discussion: """
      Needs no dataset: the coordinator sends the model shape, parameters and each microbatch's tokens. Reconnects with backoff when the coordinator goes away (for example while it restarts with --resume), exits 0 when the run is over or on SIGTERM, and 2 when the coordinator refuses it.

      Example: igpt worker --connect tcp://10.0.0.1:5555 --name gpu-less-1
      """)

  @Option(help: "Coordinator endpoint, e.g. tcp://HOST:5555.") var connect: String
  @Option(help: "Name shown in the coordinator's log and `igpt status` (default: host-pid).") var name: String?
  @Option(help: "Threads when the run's cluster.numerics is any (a strict run computes with its own count, which changes the bytes).")
  var threads: Int?
  @Option(help: "Refuse to work for a coordinator whose run config differs from this file's.") var config: String?
  @OptionGroup var keys: ClientKeyOptions
  @Option(name: .customLong("give-up-after"), help: "Exit 1 after this many seconds without a coordinator (default: keep trying).")
  var giveUpAfter: Double?
  @Option(name: .customLong("debug-stall-after"), help: .hidden) var stallAfter: Int?
  @Flag(help: "Answer every task at once with a precomputed gradient of the model's size, computing nothing (what igpt bench-cluster starts: it measures the cluster's own cost).")
  var emulate = false

  @OptionGroup var memory: MemoryOption

  func run() throws {
    try memory.apply()
    guard connect.hasPrefix("tcp://") || connect.hasPrefix("ipc://") else {
      throw CleanError("--connect \(connect): expected tcp://HOST:PORT")
    }
    if let threads, threads < 1 { throw CleanError("--threads must be at least 1") }
    let expected = try config.map { try RunConfig.load(path: $0) }
    let clientKeys = try keys.load(secretFallback: expected?.cluster.secretKey, serverFallback: expected?.cluster.serverKey)
    let label = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    var options = Worker.Options(endpoint: connect, name: label, threads: threads, config: expected, giveUpAfter: giveUpAfter,
                                 keys: clientKeys, log: { logLine(stamp("worker \(label): \($0)")) }, shouldStop: {
      guard StopSignal.received != 0 else { return false }
      StopSignal.acknowledge()
      return true
    })
    options.stallAfter = stallAfter
    options.emulate = emulate
    let worker = Worker(options: options)
    logLine(stamp("worker \(label): connecting to \(connect)"))
    let code: Int32
    switch try worker.run() {
    case .done(let step):
      logLine(stamp("worker \(label): run finished at step \(step) (\(worker.microbatchesDone) microbatches here)"))
      code = 0
    case .stopped:
      logLine(stamp("worker \(label): stopped by \(StopSignal.name)"))
      code = 0
    case .refused(let why):
      logLine(stamp("worker \(label): refused by the coordinator: \(why)"))
      code = 2
    case .gaveUp:
      logLine(stamp("worker \(label): no coordinator for \(giveUpAfter ?? 0) s: giving up"))
      code = 1
    }
    // its last task may still be computing on its own thread
    StopSignal.exitNow(code)
  }
}
