import ArgumentParser
import Foundation
import IGPTKernels

/// `igpt info`: what this process runs on (BLAS kernels, threads, CPU features).
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Show the BLAS kernels and CPU features igpt runs on.")

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func run() throws {
    let env = ProcessInfo.processInfo.environment[OpenBLASCoreType.variable]
    let chosen = OpenBLASCoreType.choose(flags: OpenBLASCoreType.cpuFlags())
    let info: [String: String] = [
      "openblas_core": BLAS.coreName,
      "openblas_coretype_env": env ?? "",
      "chosen_coretype": chosen ?? "",
      "cpus": "\(ProcessInfo.processInfo.activeProcessorCount)",
      "kernel_cpu": KernelTarget.name,
    ]
    if json {
      let data = try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      for key in info.keys.sorted() { print("\(key): \(info[key]!)") }
    }
  }
}
