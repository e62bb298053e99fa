import ArgumentParser
import Foundation
import IGPTCluster

/// `igpt server`: one parameter-server shard of a coordinator started with --shards K.
struct ServerCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server",
    abstract: "Serve one slice of the parameters for a coordinator started with --shards K.",
    discussion: """
      A shard holds one contiguous slice of the parameters and of both AdamW moments: workers push each gradient's slice to it and fetch parameter slices from it, so no single process receives every gradient. The coordinator stays the scheduler and writes the checkpoints (it pulls the slices back first); it restores each shard that says hello, and a shard that dies stops the run at its last checkpoint (restart the shard, then the coordinator with --resume: the model is the one igpt train computes). Needs no dataset and keeps nothing on disk.

      With keys, --secret-key/--server-key authenticate it to the coordinator (its public key must be on the coordinator's allow-list) and the same secret key serves workers, who are checked against --allow (the coordinator tells them the shard's public key).

      Example: igpt server --connect tcp://10.0.0.1:5555 --bind tcp://0.0.0.0:5601
      """)

  @Option(help: "Coordinator endpoint, e.g. tcp://HOST:5555.") var connect: String
  @Option(help: "Where workers reach this shard, e.g. tcp://0.0.0.0:5601 (a wildcard address is announced as this host's name).")
  var bind: String
  @Option(help: "Name shown in the coordinator's log (default: host-pid).") var name: String?
  @OptionGroup var keys: ClientKeyOptions
  @Option(help: "Workers' public keys allowed to connect (a .pub file or a directory); required with keys.") var allow: String?
  @Option(name: .customLong("give-up-after"), help: "Exit 1 after this many seconds without a coordinator (default: keep trying).")
  var giveUpAfter: Double?
  @OptionGroup var memory: MemoryOption

  func run() throws {
    try memory.apply()
    for (flag, e) in [("--connect", connect), ("--bind", bind)] where !(e.hasPrefix("tcp://") || e.hasPrefix("ipc://")) {
      throw CleanError("\(flag) \(e): expected tcp://HOST:PORT")
    }
    let clientKeys = try keys.load()
    guard (clientKeys == nil) == (allow == nil) else { throw CleanError("with keys, give --allow (the workers' public keys) too; without keys, no --allow") }
    let label = name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    var options = ShardServer.Options(coordinator: connect, bind: bind, name: label, log: { logLine(stamp("server \(label): \($0)")) }, shouldStop: {
      guard StopSignal.received != 0 else { return false }
      StopSignal.acknowledge()
      return true
    })
    options.keys = clientKeys
    options.allow = allow
    options.giveUpAfter = giveUpAfter
    let server = try ShardServer(options: options)
    logLine(stamp("server \(label): connecting to \(connect); workers reach it at \(server.endpoint)"))
    switch try server.run() {
    case .done(let step): logLine(stamp("server \(label): run finished at step \(step)"))
    case .stopped: logLine(stamp("server \(label): stopped by \(StopSignal.name)"))
    case .refused(let why):
      logLine(stamp("server \(label): refused by the coordinator: \(why)"))
      throw ExitCode(2)
    case .gaveUp:
      logLine(stamp("server \(label): no coordinator for \(giveUpAfter ?? 0) s: giving up"))
      throw ExitCode(1)
    }
  }
}
