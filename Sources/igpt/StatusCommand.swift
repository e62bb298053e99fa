import ArgumentParser
import Foundation
import IGPTCluster

/// `igpt status`: asks a running coordinator how its run is going.
struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status",
    abstract: "Show a running coordinator's step, loss, throughput, workers and task queue.")

  @Option(help: "Coordinator endpoint, e.g. tcp://HOST:5555.") var coordinator: String
  @OptionGroup var keys: ClientKeyOptions
  @Flag(help: "Print the status as one JSON object.") var json = false
  @Option(help: "Seconds to wait for an answer.") var timeout: Double = 5

  func run() throws {
    let status = try ClusterClient(endpoint: coordinator, keys: try keys.load()).status(timeout: timeout)
    if json {
      let e = JSONEncoder()
      e.outputFormatting = [.sortedKeys]
      print(String(decoding: try e.encode(status), as: UTF8.self))
    } else {
      print(status.text)
    }
  }
}
