import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining

/// `igpt train`: pretrain on one host, with checkpoints that resume exactly.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Pretrain iGPT on one host from a YAML run config.",
    discussion: """
      Writes DIR/metrics.jsonl (one JSON object per logged step and per validation) and DIR/checkpoints/step-NNNNNNNN/ (model.safetensors in Hugging Face ImageGPT layout, optimizer.safetensors, state.json). SIGINT or SIGTERM stops after the current step and writes a checkpoint; --resume continues bit for bit from the newest intact checkpoint.

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
    let store = try TokenStore(path: c.data.store)
    // what the run computes with: pinned to the recorded numerics when resuming (may re-execute)
    let shape = try c.modelConfig(storeSequenceLength: store.manifest.sequenceLength, storeVocab: store.palette.count)
    let numerics = try RunNumerics.establish(config: c, model: shape, recorded: resume ? Checkpoint.newestState(runDir: runDir) : nil,
                                             log: logLine)
    Parallel.threads = numerics.fingerprint.threads
    let existing = Checkpoint.list(runDir: runDir)
    var loaded: Checkpoint.Loaded?
    if resume {
      loaded = Checkpoint.newestGood(runDir: runDir) { logLine("warning: \($0)") }
      if loaded == nil { logLine("no intact checkpoint in \(runDir): starting from step 0") }
    } else if !existing.isEmpty {
      throw CleanError("\(runDir) already has checkpoints: add --resume to continue it, or choose another --run")
    }
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    let trainer = try Trainer(config: c, store: store, resumeFrom: loaded)
    trainer.numerics = numerics
    let resumedFrom = loaded?.path
    loaded = nil  // unmaps the checkpoint's optimizer file (igpt-l: 10.9 GB) now that it is copied
    let end = min(c.train.steps, stopAt ?? c.train.steps)
    let metrics = try MetricsLog(path: (runDir as NSString).appendingPathComponent("metrics.jsonl"),
                                 tensorboard: try TensorBoardLog(runDir: runDir, resumingAt: trainer.step))
    logLine("igpt train: \(trainer.model.parameterCount) parameters (\(c.model.layers) layers, \(c.model.embd) wide, \(c.model.heads) heads, \(c.model.objective.rawValue)), \(trainer.train.count) train images of \(trainer.train.sequenceLength) tokens, \(store.palette.count) colours; batch \(c.train.batch) (\(trainer.microbatchesPerStep) x \(c.train.microbatch)), \(Parallel.threads) threads, BLAS \(BLAS.coreName)")
    logLine("numerics: \(numerics.fingerprint.summary)\(numerics.reproducible ? "" : " (run marked not reproducible)")")
    if let resumedFrom { logLine("resumed from \(resumedFrom) at step \(trainer.step)") }
    if trainer.step >= end {
      logLine("already at step \(trainer.step) of \(end): nothing to do")
      return
    }
    StopSignal.install()
    let progress = TrainingProgress(total: end, startStep: trainer.step, tokensPerStep: trainer.tokensPerStep)
    while trainer.step < end {
      let r = try trainer.trainStep()
      let s = trainer.step
      progress.stepDone(step: s, loss: r.loss)
      if s % c.train.logEvery == 0 || s == end {
        metrics.append([
          "step": s, "loss": r.loss, "bits_per_token": r.loss / log(2.0), "lr": r.learningRate,
          "grad_norm": r.gradNorm, "tokens_per_s": progress.tokensPerSecond, "elapsed_s": progress.elapsed,
        ])
        progress.log(step: s, loss: r.loss)
      }
      if trainer.validationDue(afterStep: s) {
        if let v = try trainer.validationLoss() {
          metrics.append(["step": s, "val_loss": v, "val_bits_per_token": v / log(2.0)])
          metrics.tensorboard?.samples(model: trainer.model, palette: store.palette, step: s)
          progress.note(String(format: "step %d: val loss %.4f (%.3f bits/token)", s, v, v / log(2.0)))
        }
      }
      let stopping = StopSignal.received != 0
      if s % c.checkpoint.every == 0 || s == end || stopping {
        let path = try trainer.checkpoint(runDir: runDir)
        progress.note("checkpoint \(path)")
      }
      if stopping {
        progress.note("stopped by \(StopSignal.name) at step \(s); continue with --resume")
        return
      }
    }
    progress.finish()
    let v = trainer.lastValLoss.map { String(format: ", val loss %.4f", $0) } ?? ""
    print(String(format: "done: step %d, loss %.4f%@; checkpoints in %@", trainer.step, trainer.lastLoss ?? .nan, v,
                 (runDir as NSString).appendingPathComponent("checkpoints")))
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
    let done = step - startStep
    let rate = elapsed / Double(max(1, done))
    let eta = Double(total - step) * rate
    return String(format: "step %d/%d  loss %.4f  %.3f bits/token  %.0f tokens/s  ETA %@", step, total, loss,
                  loss / Foundation.log(2.0), tokensPerSecond, Self.duration(eta))
  }

  private func draw(step: Int, loss: Double) {
    FileHandle.standardError.write(Data(("\r" + line(step: step, loss: loss) + "\u{1B}[K").utf8))
  }

  /// A logged step: a line of its own when not on a terminal.
  func log(step: Int, loss: Double) {
    if !isTTY { FileHandle.standardError.write(Data((line(step: step, loss: loss) + "\n").utf8)) }
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
