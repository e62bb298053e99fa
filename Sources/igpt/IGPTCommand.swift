import ArgumentParser

/// The `igpt` command line: one subcommand per file.
struct IGPTCommand: ParsableCommand {
  /// This build's version (`igpt --version`, reports).
  static let version = "0.20.0"
  static let configuration = CommandConfiguration(
    commandName: "igpt",
    abstract: "iGPT (Generative Pretraining from Pixels) on CPUs, on one host or many.",
    discussion: """
      Images become sequences of palette tokens; a GPT-2-style transformer learns to predict
      them; its features feed linear probes. Forward and backward passes run on OpenBLAS.
      """,
    version: IGPTCommand.version,
    subcommands: [PrepareCommand.self, ShowCommand.self, TrainCommand.self, CoordinatorCommand.self, WorkerCommand.self, ServerCommand.self, StatusCommand.self, KeysCommand.self, ProbeCommand.self, EvalCommand.self, SampleCommand.self, CompleteCommand.self, BenchCommand.self, BenchClusterCommand.self, CodecBenchCommand.self, InfoCommand.self, OracleCommand.self, ExportCommand.self, VQVAECommand.self, ReportCommand.self])
}
