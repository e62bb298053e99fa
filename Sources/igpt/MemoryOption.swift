import ArgumentParser
import IGPTModel

/// `--max-memory`: how much memory a command may plan for (default: the host's physical memory).
struct MemoryOption: ParsableArguments {
  @Option(name: .customLong("max-memory"), help: "Memory this command may use, e.g. 16G (default: physical memory; or IGPT_MAX_MEMORY). What needs more is refused before it starts.")
  var maxMemory: String?

  /// Sets the budget every memory check uses.
  func apply() throws {
    guard let maxMemory else { return }
    guard let bytes = MemoryBudget.parse(maxMemory) else { throw ValidationError("--max-memory \(maxMemory): expected bytes or a size like 512M, 16G") }
    MemoryBudget.limit = bytes
  }
}
