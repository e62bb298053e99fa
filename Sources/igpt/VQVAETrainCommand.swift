import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt vqvae train`: one host, checkpoints that resume exactly.
struct VQVAETrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a VQ-VAE on the images of any dataset igpt prepare reads.",
    discussion: """
      Writes DIR/metrics.jsonl (per logged step: loss, mse in [0, 1] pixel units, commitment, perplexity, codes used, images/s; per evaluation: the val split's mse, psnr_db, perplexity, codes_used) and DIR/checkpoints/step-NNNNNNNN/ (vqvae.safetensors, optimizer.safetensors, state.json). SIGINT or SIGTERM stops after the current step and writes a checkpoint; --resume continues bit for bit.

      Example: igpt vqvae train --config configs/vqvae-cifar32.yaml --run runs/vqvae
      """)

  @Option(help: "YAML VQ-VAE config (see configs/vqvae-*.yaml).") var config: String
  @Option(name: .customLong("run"), help: "Run directory (metrics and checkpoints).") var runDir: String
  @Option(help: "Total steps (overrides train.steps).") var steps: Int?
  @Option(help: "Threads (overrides train.threads).") var threads: Int?
  @Option(name: .customLong("stop-at"), help: "Stop (with a checkpoint) at this step, as if interrupted.") var stopAt: Int?
  @Flag(help: "Continue from the newest intact checkpoint in --run.") var resume = false

  func run() throws {
    let c = try loadConfig()
    BLAS.setThreads(1)
    Parallel.threads = c.train.threads > 0 ? c.train.threads : ProcessInfo.processInfo.activeProcessorCount
    let trainer = try openTrainer(c)
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    let metrics = try MetricsLog(path: (runDir as NSString).appendingPathComponent("metrics.jsonl"), resumingAt: trainer.step)
    let end = min(c.train.steps, stopAt ?? c.train.steps)
    let g = trainer.model.config
    logLine("igpt vqvae train: \(trainer.model.parameterCount) parameters, \(g.resolution)x\(g.resolution)x\(g.channels) -> \(g.grid)x\(g.grid) codes of \(g.codes) (\(g.embeddingDim) wide); \(trainer.data.count("train")) train images, batch \(c.train.batch), step \(trainer.step) of \(end); \(Parallel.threads) threads")
    if trainer.step >= end {
      logLine("already at step \(trainer.step) of \(end): nothing to do")
      return
    }
    let progress = TrainingProgress(total: end, startStep: trainer.step, tokensPerStep: c.train.batch)
    progress.describe = { String(format: "step %d/%d  loss %.4f  %.0f images/s", $0, end, $1, $2) }
    var lastCheckpoint = trainer.step
    while trainer.step < end {
      let r = trainer.trainStep()
      let s = trainer.step
      progress.stepDone(step: s, loss: r.step.loss)
      if s % c.train.logEvery == 0 || s == end { record(r, step: s, end: end, metrics: metrics, progress: progress) }
      if (c.train.valEvery > 0 && s % c.train.valEvery == 0) || s == c.train.steps, trainer.data.count("val") > 0 {
        try validate(trainer, metrics: metrics, progress: progress)
      }
      let stopping = StopSignal.received != 0
      if stopping { StopSignal.acknowledge() }
      if s != lastCheckpoint && (s % c.checkpoint.every == 0 || s == end || stopping) {
        progress.note("checkpoint \(try trainer.checkpoint(runDir: runDir))")
        lastCheckpoint = s
      }
      if stopping {
        progress.note("stopped by \(StopSignal.name) at step \(s); continue with --resume")
        return
      }
    }
    progress.finish()
    print(String(format: "done: step %d, loss %.4f; checkpoints in %@", trainer.step, trainer.lastLoss ?? .nan,
                 (runDir as NSString).appendingPathComponent("checkpoints")))
  }

  /// The config file with the command line's overrides, validated.
  func loadConfig() throws -> VQVAERunConfig {
    do {
      var c = try VQVAERunConfig.load(path: config)
      if let steps { c.train.steps = steps }
      if let threads { c.train.threads = threads }
      try c.validate(name: config)
      return c
    } catch let e as ConfigError { throw CleanError(e.description) }
  }

  /// A fresh run (refused where checkpoints exist) or, with --resume, the newest intact checkpoint.
  func openTrainer(_ c: VQVAERunConfig) throws -> VQVAETrainer {
    var loaded: VQVAECheckpoint.Loaded?
    if resume {
      loaded = VQVAECheckpoint.newestGood(runDir: runDir) { logLine("warning: \($0)") }
      if loaded == nil { logLine("no intact checkpoint in \(runDir): starting from step 0") }
    } else if !Checkpoint.list(runDir: runDir).isEmpty {
      throw CleanError("\(runDir) already has checkpoints: add --resume to continue it, or choose another --run")
    }
    let data = try ImageSplits.load(dataset: c.data.dataset, resolution: c.model.resolution, crop: c.data.crop,
                                    valFraction: c.data.valFraction, seed: c.train.seed)
    do { return try VQVAETrainer(config: c, data: data, resumeFrom: loaded) } catch let e as ConfigError { throw CleanError(e.description) }
  }

  /// A logged step: its metrics record and its line.
  func record(_ r: VQVAETrainer.StepResult, step s: Int, end: Int, metrics: MetricsLog, progress: TrainingProgress) {
    let x = r.step
    metrics.append(["step": s, "loss": x.loss, "mse": x.mse, "commitment": x.commitment, "perplexity": x.perplexity, "codes_used": x.codesUsed,
                    "lr": r.learningRate, "images_per_s": progress.tokensPerSecond, "elapsed_s": progress.elapsed])
    progress.log(String(format: "step %d/%d  loss %.4f  mse %.5f  perplexity %.1f  %d codes  %.0f images/s", s, end, x.loss, x.mse,
                        x.perplexity, x.codesUsed, progress.tokensPerSecond), step: s)
  }

  /// The val split's reconstruction quality, recorded and printed.
  func validate(_ trainer: VQVAETrainer, metrics: MetricsLog, progress: TrainingProgress) throws {
    let e = try trainer.evaluate(split: "val", count: trainer.config.train.valImages)
    trainer.lastEval = e
    metrics.append(["step": trainer.step, "val_mse": e.mse, "val_psnr_db": e.psnrDB, "val_perplexity": e.perplexity, "val_codes_used": e.codesUsed,
                    "val_images": e.images, "elapsed_s": progress.elapsed])
    progress.note(String(format: "step %d: val mse %.5f (%.2f dB), perplexity %.1f, %d codes used", trainer.step, e.mse, e.psnrDB, e.perplexity,
                         e.codesUsed))
  }
}
