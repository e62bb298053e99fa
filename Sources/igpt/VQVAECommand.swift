import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

/// `igpt vqvae`: train and evaluate the VQ-VAE whose codes become latent token stores.
struct VQVAECommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vqvae",
    abstract: "Train and evaluate a VQ-VAE (images to a grid of codes, and back).",
    subcommands: [VQVAETrainCommand.self, VQVAEEvalCommand.self, VQVAEShowCommand.self, VQVAEBenchCommand.self])
}

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
    var c: VQVAERunConfig
    do {
      c = try VQVAERunConfig.load(path: config)
      if let steps { c.train.steps = steps }
      if let threads { c.train.threads = threads }
      try c.validate(name: config)
    } catch let e as ConfigError { throw CleanError(e.description) }
    BLAS.setThreads(1)
    Parallel.threads = c.train.threads > 0 ? c.train.threads : ProcessInfo.processInfo.activeProcessorCount
    var loaded: VQVAECheckpoint.Loaded?
    if resume {
      loaded = VQVAECheckpoint.newestGood(runDir: runDir) { logLine("warning: \($0)") }
      if loaded == nil { logLine("no intact checkpoint in \(runDir): starting from step 0") }
    } else if !Checkpoint.list(runDir: runDir).isEmpty {
      throw CleanError("\(runDir) already has checkpoints: add --resume to continue it, or choose another --run")
    }
    let data = try ImageSplits.load(dataset: c.data.dataset, resolution: c.model.resolution, crop: c.data.crop,
                                    valFraction: c.data.valFraction, seed: c.train.seed)
    let trainer: VQVAETrainer
    do { trainer = try VQVAETrainer(config: c, data: data, resumeFrom: loaded) } catch let e as ConfigError { throw CleanError(e.description) }
    loaded = nil
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    let metrics = try MetricsLog(path: (runDir as NSString).appendingPathComponent("metrics.jsonl"), resumingAt: trainer.step)
    let end = min(c.train.steps, stopAt ?? c.train.steps)
    let m = trainer.model, g = m.config
    logLine("igpt vqvae train: \(m.parameterCount) parameters, \(g.resolution)x\(g.resolution)x\(g.channels) -> \(g.grid)x\(g.grid) codes of \(g.codes) (\(g.embeddingDim) wide); \(data.count("train")) train images, batch \(c.train.batch), step \(trainer.step) of \(end); \(Parallel.threads) threads")
    if trainer.step >= end {
      logLine("already at step \(trainer.step) of \(end): nothing to do")
      return
    }
    let progress = TrainingProgress(total: end, startStep: trainer.step, tokensPerStep: c.train.batch)
    progress.describe = { String(format: "step %d/%d  loss %.4f  %.0f images/s", $0, end, $1, $2) }
    let started = Date()
    var lastCheckpoint = trainer.step
    while trainer.step < end {
      let r = trainer.trainStep()
      let s = trainer.step
      progress.stepDone(step: s, loss: r.step.loss)
      if s % c.train.logEvery == 0 || s == end {
        metrics.append(["step": s, "loss": r.step.loss, "mse": r.step.mse, "commitment": r.step.commitment, "perplexity": r.step.perplexity,
                        "codes_used": r.step.codesUsed, "lr": r.learningRate, "images_per_s": progress.tokensPerSecond,
                        "elapsed_s": Date().timeIntervalSince(started)])
        progress.log(String(format: "step %d/%d  loss %.4f  mse %.5f  perplexity %.1f  %d codes  %.0f images/s", s, end, r.step.loss, r.step.mse,
                            r.step.perplexity, r.step.codesUsed, progress.tokensPerSecond), step: s)
      }
      if (c.train.valEvery > 0 && s % c.train.valEvery == 0) || s == c.train.steps, data.count("val") > 0 {
        let e = try trainer.evaluate(split: "val", count: c.train.valImages)
        trainer.lastEval = e
        metrics.append(["step": s, "val_mse": e.mse, "val_psnr_db": e.psnrDB, "val_perplexity": e.perplexity, "val_codes_used": e.codesUsed,
                        "val_images": e.images, "elapsed_s": Date().timeIntervalSince(started)])
        progress.note(String(format: "step %d: val mse %.5f (%.2f dB), perplexity %.1f, %d codes used", s, e.mse, e.psnrDB, e.perplexity, e.codesUsed))
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
}

/// `igpt vqvae eval`: reconstruction quality on a split, one JSON line.
struct VQVAEEvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Reconstruction quality of a trained VQ-VAE on a dataset's split, as one JSON line.",
    discussion: """
      Prints mse (pixels in [0, 1], reconstructions clamped to it), psnr_db, perplexity and codes_used over every latent of the split, with the checkpoint, split and image count.

      Example: igpt vqvae eval --vqvae runs/vqvae --dataset ../shared/data/cifar10-sample --split val
      """)

  @Option(help: "A VQ-VAE run directory (its newest checkpoint) or a checkpoint directory.") var vqvae: String
  @Option(help: "Dataset (default: the one it was trained on).") var dataset: String?
  @Option(help: "Split: train, val or test.") var split = "test"
  @Option(help: "Only the first N images of the split.") var images: Int?
  @Option(help: "Threads (default: all cores).") var threads: Int?

  func run() throws {
    let path = try VQVAECheckpoint.resolve(vqvae)
    let loaded = try VQVAECheckpoint.read(path)
    BLAS.setThreads(1)
    Parallel.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
    let c = loaded.state.config
    let data = try ImageSplits.load(dataset: dataset ?? c.data.dataset, resolution: loaded.model.config.resolution, crop: c.data.crop,
                                    valFraction: c.data.valFraction, seed: c.train.seed)
    guard data.channels == loaded.model.config.channels else {
      throw CleanError("the dataset's images have \(data.channels) channel(s), the VQ-VAE takes \(loaded.model.config.channels)")
    }
    let e = try VQVAEEvaluation.measure(loaded.model, data, split: split, count: images, batch: c.train.batch)
    var out = try JSONSerialization.jsonObject(with: JSONEncoder().encode(e)) as! [String: Any]
    out["checkpoint"] = path
    out["step"] = loaded.state.step
    print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
  }
}

/// `igpt vqvae show`: originals beside their reconstructions, as a PNG grid.
struct VQVAEShowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show",
    abstract: "Write a PNG of images beside their VQ-VAE reconstructions (left original, right decoded from its codes).",
    discussion: "Example: igpt vqvae show --vqvae runs/vqvae --split val --count 32 --out recon.png")

  @Option(help: "A VQ-VAE run directory (its newest checkpoint) or a checkpoint directory.") var vqvae: String
  @Option(help: "Dataset (default: the one it was trained on).") var dataset: String?
  @Option(help: "Split: train, val or test.") var split = "test"
  @Option(help: "Images (the first of the split).") var count = 32
  @Option(help: "Output PNG.") var out: String

  func run() throws {
    let loaded = try VQVAECheckpoint.read(try VQVAECheckpoint.resolve(vqvae))
    BLAS.setThreads(1)
    Parallel.threads = ProcessInfo.processInfo.activeProcessorCount
    let c = loaded.state.config, g = loaded.model.config
    let data = try ImageSplits.load(dataset: dataset ?? c.data.dataset, resolution: g.resolution, crop: c.data.crop,
                                    valFraction: c.data.valFraction, seed: c.train.seed)
    guard let all = data.images[split] else { throw CleanError("the dataset has no split '\(split)'") }
    guard data.channels == g.channels else { throw CleanError("the dataset's images have \(data.channels) channel(s), the VQ-VAE takes \(g.channels)") }
    let n = min(count, data.count(split)), per = data.floatsPerImage
    guard n > 0 else { throw CleanError("split '\(split)' has no images") }
    func bytes(_ p: UnsafePointer<Float>) -> [UInt8] { (0..<per).map { UInt8((min(max(p[$0] + 0.5, 0), 1) * 255).rounded()) } }
    var groups: [[[UInt8]]] = []
    all.withUnsafeBufferPointer { src in
      for i in 0..<n {
        let x = src.baseAddress! + i * per
        let codes = loaded.model.encode(x, batch: 1)
        let y = codes.withUnsafeBufferPointer { loaded.model.decode($0.baseAddress!, batch: 1) }
        groups.append([bytes(x), bytes(y)])
      }
    }
    try ImageGrid.write(groups: groups, resolution: g.resolution, channels: g.channels, columns: 4, to: out)
    print("wrote \(out): \(n) images of split \(split), original | reconstruction (\(g.grid)x\(g.grid) codes each)")
  }
}

/// `igpt vqvae bench`: training steps on random images, one JSON line (for side-by-side runs
/// against Tests/Oracle/torch_vqvae.py bench with the same flags).
struct VQVAEBenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Time VQ-VAE training steps (forward, backward, AdamW, codebook update) on random images.",
    discussion: "Prints images_per_s, median_step_ms and the forward GFLOP/s the step's products reach (backward counted as twice the forward).")

  @Option(help: "Image side.") var resolution = 32
  @Option(help: "Channels (1 or 3).") var channels = 3
  @Option(help: "Images per step.") var batch = 32
  @Option(help: "Timed steps (after 2 untimed).") var steps = 20
  @Option(help: "Threads (default: all cores).") var threads: Int?
  @Option var hiddens = 128
  @Option(name: .customLong("residual-hiddens")) var residualHiddens = 32
  @Option(name: .customLong("residual-layers")) var residualLayers = 2
  @Option(name: .customLong("embedding-dim")) var embeddingDim = 64
  @Option var codes = 512
  @Option var downsample = 4

  func run() throws {
    BLAS.setThreads(1)
    Parallel.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
    let shape = VQVAEConfig(resolution: resolution, channels: channels, hiddens: hiddens, residualHiddens: residualHiddens,
                            residualLayers: residualLayers, embeddingDim: embeddingDim, codes: codes, downsample: downsample)
    if let p = shape.problem { throw CleanError(p) }
    let m = try VQVAE(config: shape)
    m.initialize(seed: 1)
    var rng = SeededRandom(seed: 2)
    let x = (0..<(batch * m.imageFloats)).map { _ in Float(rng.uniform() - 0.5) }
    m.quantizer.initialize(z: m.encodeContinuous(x, batch: batch), count: batch * m.latentsPerImage, seed: 3)
    var mo = [Float](repeating: 0, count: m.parameterCount), vo = mo
    var times: [Double] = []
    for s in 0..<(steps + 2) {
      let t0 = Date()
      _ = m.trainStep(x, batch: batch, variance: 0.06, restartSeed: UInt64(s))
      AdamW.update(params: m.params, grads: m.grads, m: &mo, v: &vo, count: m.parameterCount,
                   step: .init(learningRate: 3e-4, t: s + 1, beta1: 0.9, beta2: 0.999))
      if s >= 2 { times.append(Date().timeIntervalSince(t0)) }
    }
    let median = times.sorted()[times.count / 2]
    let flops = 3 * 2 * Double(m.macsPerImage) * Double(batch)
    let out: [String: Any] = [
      "impl": "igpt", "images_per_s": Double(batch) / median, "median_step_ms": median * 1000, "gflops": flops / median / 1e9,
      "parameters": m.parameterCount, "batch": batch, "resolution": resolution, "channels": channels, "threads": Parallel.threads,
      "steps": steps, "kernel_cpu": KernelCPU.name, "openblas_core": BLAS.coreName,
    ]
    print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
  }
}
