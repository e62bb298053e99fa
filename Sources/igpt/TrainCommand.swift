import ArgumentParser
import Foundation
import IGPTCluster
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt train`: pretrain on one host, with checkpoints that resume exactly.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Pretrain iGPT on one host from a YAML run config.",
    discussion: """
      Writes DIR/metrics.jsonl (one JSON object per logged step and per validation) and DIR/checkpoints/step-NNNNNNNN/ (model.safetensors in Hugging Face ImageGPT layout, optimizer.safetensors, state.json). SIGINT or SIGTERM stops after the current step and writes a checkpoint; --resume continues bit for bit from the newest intact checkpoint.

      With probes.every N in the config, the parameters of every N-th step are checkpointed and then probed here (the config's probes section: layers, images, concat, raw pixels), between training steps; results go to DIR/probes.jsonl and TensorBoard as a coordinator's probe jobs do, and a probe a stop interrupted runs again on --resume. data.augment {translate: K, flip: true} shifts train images by up to K pixels and mirrors half of them, drawn per image from the seed and its place in the data order.

      Example: igpt train --config configs/fashion-mnist-tiny.yaml --run runs/tiny
      """)

  @OptionGroup var options: RunConfigOptions
  @Option(name: .customLong("run"), help: "Run directory (metrics and checkpoints).") var runDir: String
  @Option(name: .customLong("stop-at"), help: "Stop (with a checkpoint) at this step, as if interrupted.")
  var stopAt: Int?
  @Flag(help: "Continue from the newest intact checkpoint in --run.") var resume = false

  func run() throws {
    let c = try options.load()
    BLAS.setThreads(1)
    let end = min(c.train.steps, stopAt ?? c.train.steps)
    let run: TrainingRun
    do { run = try TrainingRun(config: c, runDir: runDir, resume: resume, end: end, log: logLine) } catch let e as ConfigError {
      throw CleanError(e.description)
    }
    Parallel.threads = run.numerics.fingerprint.threads
    if run.sampleDecoder == nil { run.sampleDecoder = try VQVAETokenDecoder.forStore(run.trainer.store) }
    let trainer = run.trainer
    let opening = run.openingLines
    logLine("igpt train: \(opening[0]); \(Parallel.threads) threads, BLAS \(BLAS.coreName)")
    for line in opening.dropFirst() { logLine(line) }
    let probes = try LocalProbes(config: c, runDir: runDir, resumingAt: trainer.step, tensorboard: run.metrics.tensorboard)
    if let why = probes.problem(modelLayers: c.model.layers) { throw CleanError("probes: \(why)") }
    let progress = TrainingProgress(total: end, startStep: trainer.step, tokensPerStep: trainer.tokensPerStep)
    // a probe the last invocation stopped in (its step was checkpointed first)
    if probes.due(afterStep: trainer.step) { try probe(probes, run, progress) }
    if run.isFinished {
      logLine("already at step \(trainer.step) of \(end): nothing to do")
      return
    }
    while !run.isFinished {
      let r = try trainer.trainStep()
      let s = trainer.step
      progress.stepDone(step: s, loss: r.loss)
      if run.logDue(afterStep: s) { progress.log(run.recordStep(r, tokensPerSecond: progress.tokensPerSecond), step: s) }
      if run.validationDue(afterStep: s), let v = try trainer.validationLoss() { progress.note(run.recordValidation(v)) }
      let stopping = StopSignal.received != 0
      if stopping { StopSignal.acknowledge() }
      let probing = !stopping && probes.due(afterStep: s)
      if run.checkpointDue(afterStep: s, stopping: stopping || probing) { progress.note(try run.checkpoint()) }
      if stopping {
        progress.note("stopped by \(StopSignal.name) at step \(s); continue with --resume")
        return
      }
      if probing { try probe(probes, run, progress) }
    }
    progress.finish()
    let v = trainer.lastValLoss.map { String(format: ", val loss %.4f", $0) } ?? ""
    print(String(format: "done: step %d, loss %.4f%@; checkpoints in %@", trainer.step, trainer.lastLoss ?? .nan, v,
                 (runDir as NSString).appendingPathComponent("checkpoints")))
  }


  /// The scheduled probe of the current step's parameters (`probes.every`), its step already
  /// checkpointed: a stop during it loses nothing, and --resume probes that step again.
  func probe(_ probes: LocalProbes, _ run: TrainingRun, _ progress: TrainingProgress) throws {
    let s = run.step
    progress.note("probe of step \(s): layers \(probes.request.layers), \(probes.request.trainImages) train images")
    let line = ProgressLine()
    let summary = try probes.run(step: s, model: run.trainer.model, store: run.trainer.store) { done, total in
      line.update("probe features", done, total)
    }
    line.finish()
    progress.note(summary)
  }
}

/// Prints to stderr.
func logLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// The live training line: step, loss, bits per token, tokens/s, ETA.
final class TrainingProgress {
  let total: Int
  let tokensPerStep: Int
  let start = Date()
  let startStep: Int
  private var windowStart = Date()
  private var windowSteps = 0
  private(set) var tokensPerSecond = 0.0
  private let isTTY = isatty(STDERR_FILENO) != 0
  /// The live line's text (step, loss, rate per second) for runs that count something other
  /// than tokens; nil: `TrainingRun.stepLine`.
  var describe: ((Int, Double, Double) -> String)?

  init(total: Int, startStep: Int, tokensPerStep: Int) {
    self.total = total
    self.startStep = startStep
    self.tokensPerStep = tokensPerStep
  }

  var elapsed: Double { Date().timeIntervalSince(start) }

  func stepDone(step: Int, loss: Double) {
    windowSteps += 1
    let dt = Date().timeIntervalSince(windowStart)
    if dt > 0 { tokensPerSecond = Double(windowSteps * tokensPerStep) / dt }
    if dt > 10 {
      windowStart = Date()
      windowSteps = 0
    }
    if isTTY { draw(step: step, loss: loss) }
  }

  private func line(step: Int, loss: Double) -> String {
    (describe?(step, loss, tokensPerSecond) ?? TrainingRun.stepLine(step: step, end: total, loss: loss, tokensPerSecond: tokensPerSecond))
      + "  ETA " + Self.duration(eta(step: step))
  }

  private func eta(step: Int) -> Double {
    Double(total - step) * elapsed / Double(max(1, step - startStep))
  }

  private func draw(step: Int, loss: Double) {
    FileHandle.standardError.write(Data(("\r" + line(step: step, loss: loss) + "\u{1B}[K").utf8))
  }

  /// A logged step's line (`TrainingRun.recordStep`): a line of its own when not on a terminal.
  func log(_ line: String, step: Int) {
    if !isTTY { FileHandle.standardError.write(Data((line + "  ETA " + Self.duration(eta(step: step)) + "\n").utf8)) }
  }

  /// A message on its own line.
  func note(_ s: String) {
    FileHandle.standardError.write(Data(((isTTY ? "\r\u{1B}[K" : "") + s + "\n").utf8))
  }

  func finish() { if isTTY { FileHandle.standardError.write(Data("\n".utf8)) } }

  static func duration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    let t = Int(s)
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t / 60 % 60) : String(format: "%dm%02ds", t / 60, t % 60)
  }
}
