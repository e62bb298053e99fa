import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTTraining
import IGPTVQVAE

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
