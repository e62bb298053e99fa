import Foundation
import IGPTData
import IGPTKernels

/// One training run's policy, the same for `igpt train` and a cluster's coordinator: opening
/// or resuming the run directory, when to log, validate and checkpoint, and the metrics
/// records and log lines. One copy of each rule.
public final class TrainingRun {
  public let trainer: Trainer
  public let runDir: String
  /// Last step of this invocation.
  public let end: Int
  public let numerics: RunNumerics
  /// RUN/metrics.jsonl (cut back to the resumed step: no step is recorded twice).
  public let metrics: MetricsLog
  /// The step this invocation started at.
  public let startStep: Int
  public private(set) var lastCheckpointStep: Int
  /// The checkpoint it resumed from, if any.
  public let resumedFrom: String?
  public let started = Date()
  /// What draws the TensorBoard samples at each validation: the store's palette here; a latent
  /// store's VQ-VAE decoder when the command sets it (nil: no samples).
  public var sampleDecoder: TokenDecoder?

  /// Opens RUN: a fresh run (refused when RUN already has checkpoints) or, with `resume`, the
  /// newest intact checkpoint, pinned to the numerics it recorded (this process may re-execute).
  /// `computes`: this process computes gradients (`igpt train`), not only sums them.
  public init(config c: RunConfig, runDir: String, resume: Bool, end: Int, computes: Bool = true, log: (String) -> Void) throws {
    let store = try TokenStore(path: c.data.store)
    let shape = try c.modelConfig(storeSequenceLength: store.manifest.sequenceLength, storeVocab: store.vocab)
    try ResourcePlan.training(c, model: shape, trainImages: try store.split("train").count, computes: computes)
    numerics = try RunNumerics.establish(config: c, model: shape, recorded: resume ? Checkpoint.newestState(runDir: runDir) : nil, log: log)
    var loaded: Checkpoint.Loaded?
    if resume {
      loaded = Checkpoint.newestGood(runDir: runDir) { log("warning: \($0)") }
      if loaded == nil { log("no intact checkpoint in \(runDir): starting from step 0") }
    } else if !Checkpoint.list(runDir: runDir).isEmpty {
      throw ConfigError("\(runDir) already has checkpoints: add --resume to continue it, or choose another --run")
    }
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    trainer = try Trainer(config: c, store: store, resumeFrom: loaded)
    trainer.numerics = numerics
    resumedFrom = loaded?.path
    loaded = nil  // unmaps the checkpoint's optimizer file (igpt-l: 10.9 GB) now that it is copied
    self.runDir = runDir
    self.end = end
    startStep = trainer.step
    sampleDecoder = store.palette.map { .palette($0, resolution: store.manifest.resolution) }
    lastCheckpointStep = trainer.step
    metrics = try MetricsLog(path: (runDir as NSString).appendingPathComponent("metrics.jsonl"), resumingAt: trainer.step,
                             tensorboard: try TensorBoardLog(runDir: runDir, resumingAt: trainer.step))
  }

  var config: RunConfig { trainer.config }
  public var step: Int { trainer.step }
  public var isFinished: Bool { trainer.step >= end }

  // MARK: - When

  /// Whether the step just completed is logged.
  public func logDue(afterStep s: Int) -> Bool { s % config.train.logEvery == 0 || s == end }

  /// Whether the model is validated after completing step s (never at the step it resumed at:
  /// that validation is already recorded).
  public func validationDue(afterStep s: Int) -> Bool { s > startStep && trainer.validationDue(afterStep: s) }

  /// Whether a checkpoint is written after step s (`stopping`: the run is being interrupted).
  public func checkpointDue(afterStep s: Int, stopping: Bool = false) -> Bool {
    s != lastCheckpointStep && (s % config.checkpoint.every == 0 || s == end || stopping)
  }

  /// The next step a checkpoint is due at (for status).
  public var nextCheckpointStep: Int {
    let s = trainer.step, every = config.checkpoint.every
    return s % every == 0 && s != lastCheckpointStep ? s : min(end, (s / every + 1) * every)
  }

  // MARK: - Records

  /// Records a completed step in metrics.jsonl (with `extra` keys) and returns its log line.
  @discardableResult
  public func recordStep(_ r: Trainer.StepResult, tokensPerSecond: Double, extra: [String: Any] = [:], note: String = "") -> String {
    let s = trainer.step
    var record: [String: Any] = [
      "step": s, "loss": r.loss, "bits_per_token": r.loss / log(2.0), "lr": r.learningRate, "grad_norm": r.gradNorm,
      "tokens_per_s": tokensPerSecond, "elapsed_s": Date().timeIntervalSince(started),
    ]
    if !(trainer.numerics ?? numerics).reproducible { record["reproducible"] = false }
    record.merge(extra) { a, _ in a }
    metrics.append(record)
    return Self.stepLine(step: s, end: end, loss: r.loss, tokensPerSecond: tokensPerSecond) + note
  }

  /// Records a validation loss and the model's samples at it (TensorBoard's "samples" image and
  /// RUN/samples/step-NNNNNNNN.png, for `igpt report`); returns its log line.
  @discardableResult
  public func recordValidation(_ v: Double) -> String {
    let s = trainer.step
    metrics.append(["step": s, "val_loss": v, "val_bits_per_token": v / log(2.0)])
    var note = ""
    if let sampleDecoder, let grid = TensorBoardLog.sampleGrid(model: trainer.model, decoder: sampleDecoder, step: s) {
      metrics.tensorboard?.image(step: s, tag: "samples", png: grid.data, width: grid.width, height: grid.height, channels: sampleDecoder.channels)
      let dir = (runDir as NSString).appendingPathComponent("samples")
      do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try grid.data.write(to: URL(fileURLWithPath: dir + "/" + Self.samplesName(step: s)), options: .atomic)
      } catch {
        note = "; samples not written to \(dir): \(error.localizedDescription)"
      }
    }
    return String(format: "step %d: val loss %.4f (%.3f bits/token)", s, v, v / log(2.0)) + note
  }

  /// The file of a validation's samples in RUN/samples.
  public static func samplesName(step: Int) -> String { String(format: "step-%08d.png", step) }

  /// Writes the current step's checkpoint; returns its log line.
  @discardableResult
  public func checkpoint() throws -> String {
    let path = try trainer.checkpoint(runDir: runDir)
    lastCheckpointStep = trainer.step
    return "checkpoint \(path)"
  }

  /// The line a logged step prints: step, loss, bits per token, tokens/s.
  public static func stepLine(step: Int, end: Int, loss: Double, tokensPerSecond: Double) -> String {
    String(format: "step %d/%d  loss %.4f  %.3f bits/token  %.0f tokens/s", step, end, loss, loss / log(2.0), tokensPerSecond)
  }

  /// The line a run prints when it starts.
  public var openingLines: [String] {
    let c = config, t = trainer
    var lines = [
      "\(t.model.parameterCount) parameters (\(c.model.layers) layers, \(c.model.embd) wide, \(c.model.heads) heads, \(c.model.objective.rawValue)), \(t.train.count) train images of \(t.train.sequenceLength) tokens, \(t.store.vocab) \(t.store.palette == nil ? "VQ-VAE codes" : "colours"); batch \(c.train.batch) (\(t.microbatchesPerStep) x \(c.train.microbatch)), step \(t.step) of \(end)",
      "numerics (\(numerics.policy.rawValue)): \(numerics.fingerprint.summary)\(numerics.reproducible ? "" : "; run marked NOT reproducible")",
    ]
    if let resumedFrom { lines.append("resumed from \(resumedFrom) at step \(t.step)") }
    return lines
  }
}
