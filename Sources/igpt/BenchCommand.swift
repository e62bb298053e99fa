import ArgumentParser
import Foundation
import IGPTKernels
import IGPTModel
import IGPTProbe

/// `igpt bench`: training-step throughput on random tokens, beside the sgemm ceiling of this machine.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Time training steps (forward, backward, AdamW) and the sgemm ceiling; print one JSON line.",
    discussion: """
      FLOPs per step are counted as tokens x (6 x (12 L C^2 + V C) + 12 L T C): forward and backward of every matrix product (2 FLOPs per multiply-add forward, twice that backward) plus attention's two T x T products per head, counted in full (no discount for the causal mask, as in PaLM's MFU).

      mfu = gflops / sgemm_gflops, where sgemm_gflops is the best of a 1024^3 sgemm split across igpt's threads and OpenBLAS's own threading, measured in the same run. --profile adds the milliseconds each kernel takes per step, and attention_gflops: attention's rate forward and backward, counting the products its kernels really do (the masked blocks they skip are not counted).
      """)

  @Option(help: "Transformer blocks.") var layers = 8
  @Option(help: "Embedding width.") var embd = 256
  @Option(help: "Attention heads.") var heads = 8
  @Option(help: "Sequence length (tokens per image).") var seq = 196
  @Option(help: "Model positions (n_ctx; default: --seq).") var positions: Int?
  @Option(help: "Sequences per step.") var batch = 16
  @Option(help: "Palette size.") var vocab = 16
  @Option(help: "Threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
  @Option(help: "Timed steps (after 2 warm-up steps).") var steps = 10
  @Option(help: "Objective: ar or bert.") var objective: ModelConfig.Objective = .ar
  @Option(help: "Seed for parameters and tokens.") var seed: UInt64 = 1
  @Flag(help: "Also report milliseconds per step in each kernel (profile_ms); adds timing overhead.")
  var profile = false
  @Flag(help: "Recompute activations in backward (train.recompute): less memory, one more forward per step.")
  var recompute = false
  @Flag(help: "Also time probe feature extraction (all layers, forward only) on the same batch: features_tokens_per_s and its ratio to training.")
  var features = false
  @Option(name: .customLong("feature-layers"), help: "With --features: the layers a probe reads (all, mid or a list like 2,4); passes stop at the deepest.")
  var featureLayers = "all"
  @Flag(name: .customLong("features-split"), help: "With --features: also time passes that split every kernel across the threads (not image groups), alternating.")
  var featuresSplit = false
  @Flag(help: "Also time the KV-cache sampler (igpt sample) filling all --seq positions of --batch images (AR only): sampling_tokens_per_s.")
  var sampling = false

  func validate() throws {
    if threads < 1 { throw ValidationError("--threads must be at least 1") }
    if steps < 1 { throw ValidationError("--steps must be at least 1") }
    if batch < 1 { throw ValidationError("--batch must be at least 1") }
    if sampling && objective != .ar { throw ValidationError("--sampling needs --objective ar") }
    if (try? LinearProbe.parseLayers(featureLayers, modelLayers: layers)) == nil {
      throw ValidationError("--feature-layers \(featureLayers): expected all, mid, or a list of layers in 0...\(layers)")
    }
  }

  @OptionGroup var memory: MemoryOption

  func run() throws {
    try memory.apply()
    Parallel.threads = threads
    BLAS.setThreads(1)
    let config = ModelConfig(layers: layers, embd: embd, heads: heads, seq: positions ?? seq,
                             vocab: vocab, objective: objective)
    try config.validate(sequenceLength: seq)
    try MemoryBudget.check(MemoryBudget.model(config) + MemoryBudget.activations(config, batch: batch, seq: seq, threads: threads, recompute: recompute),
                           for: "a training step of \(batch) x \(seq) tokens")
    let model = try IGPT(config: config)
    model.initialize(seed: seed)
    model.recomputeActivations = recompute
    var rng = SeededRandom(seed: seed &+ 1)
    let tokens = (0..<(batch * seq)).map { _ in Int32(rng.next() % UInt64(vocab)) }
    let mask = BERTMask.draw(B: batch, T: seq, rng: &rng)
    let n = model.parameterCount
    let m = UnsafeMutablePointer<Float>.allocate(capacity: n)
    let v = UnsafeMutablePointer<Float>.allocate(capacity: n)
    m.initialize(repeating: 0, count: n)
    v.initialize(repeating: 0, count: n)
    defer { m.deallocate(); v.deallocate() }

    var t = 0
    func step() -> Double {
      t += 1
      StepProfile.measure("zero_grad") { model.zeroGradients() }
      let loss = tokens.withUnsafeBufferPointer { tk in
        mask.withUnsafeBufferPointer { mk in
          model.forwardBackward(
            tokens: tk.baseAddress!, mask: mk.baseAddress!, batch: batch, length: seq)
        }
      }
      StepProfile.measure("adamw") {
        AdamW.update(params: model.params, grads: model.grads, m: m, v: v, count: n,
                     step: .init(learningRate: 1e-4, t: t))
      }
      return loss
    }
    for _ in 0..<2 { _ = step() }
    StepProfile.enabled = profile
    var times: [Double] = []
    var loss = 0.0
    for _ in 0..<steps {
      let start = DispatchTime.now().uptimeNanoseconds
      loss = step()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    StepProfile.enabled = false
    let median = times.sorted()[times.count / 2]
    let tokensPerStep = Double(batch * seq)
    let L = Double(layers), C = Double(embd), T = Double(seq), V = Double(vocab)
    let flopsPerToken = 6 * (12 * L * C * C + V * C) + 12 * L * T * C
    let gflops = tokensPerStep * flopsPerToken / median / 1e9
    let ceiling = SgemmCeiling.measure(threads: threads)
    let result: [String: Any] = [
      "impl": "igpt", "layers": layers, "embd": embd, "heads": heads, "seq": seq, "batch": batch,
      "vocab": vocab, "objective": objective.rawValue, "params": n, "steps": steps,
      "threads": threads, "recompute": recompute, "openblas_core": BLAS.coreName, "kernel_cpu": KernelCPU.name,
      "median_step_ms": round3(median * 1000), "tokens_per_s": round3(tokensPerStep / median),
      "gflops": round3(gflops), "sgemm_gflops": round3(ceiling), "mfu": round3(gflops / ceiling),
      "loss": loss, "peak_rss_mb": round3(PeakMemory.residentMB()),
    ]
    var output = result
    output["numerics"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(try NumericsFingerprint.measure(config, threads: threads)))
    if profile {
      let ms = StepProfile.milliseconds.mapValues { $0 / Double(steps) }
      output["profile_ms"] = ms.mapValues(round3)
      output["attention_gflops"] = attentionRates(ms: ms)
    }
    if features {
      // Feature passes alternate with training steps, so the ratio compares the two under the
      // same machine conditions (this box is shared: separate phases drifted by 10-15%).
      var featureTimes: [Double] = [], pairedSteps: [Double] = []
      StepProfile.reset()
      // its own model, as in `igpt probe run` and a worker's probe model: forward-only activations
      let featureModel = try IGPT(config: config)
      featureModel.params.update(from: model.params, count: n)
      let deepest = try LinearProbe.parseLayers(featureLayers, modelLayers: layers).max()!
      func featurePass(groups: Bool = true) {
        _ = tokens.withUnsafeBufferPointer { tk in
          mask.withUnsafeBufferPointer { mk in
            featureModel.allFeatures(tokens: tk.baseAddress!, mask: objective == .bert ? mk.baseAddress! : nil, batch: batch,
                                     through: deepest, imageGroups: groups)
          }
        }
      }
      func timed(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
      }
      featurePass()
      if featuresSplit { featurePass(groups: false) }
      var splitTimes: [Double] = []
      for _ in 0..<steps {
        StepProfile.enabled = profile
        featureTimes.append(timed { featurePass() })
        StepProfile.enabled = false
        pairedSteps.append(timed { _ = step() })
        if featuresSplit { splitTimes.append(timed { featurePass(groups: false) }) }
      }
      if featuresSplit {
        let splitMedian = splitTimes.sorted()[splitTimes.count / 2]
        output["features_split_tokens_per_s"] = round3(tokensPerStep / splitMedian)
        output["features_split_vs_training"] = round3(pairedSteps.sorted()[pairedSteps.count / 2] / splitMedian)
      }
      if profile { output["features_profile_ms"] = StepProfile.milliseconds.mapValues { round3($0 / Double(steps)) } }
      let featureMedian = featureTimes.sorted()[featureTimes.count / 2]
      let pairedMedian = pairedSteps.sorted()[pairedSteps.count / 2]
      output["features_tokens_per_s"] = round3(tokensPerStep / featureMedian)
      output["features_vs_training"] = round3(pairedMedian / featureMedian)
      output["feature_layers"] = featureLayers
    }
    if sampling { output["sampling_tokens_per_s"] = round3(samplingRate(model)) }
    let data = try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
  }

  /// Tokens per second of the KV-cache sampler filling all `seq` positions of `batch` images,
  /// the median of 3 passes (temperature 1, fixed seeds).
  func samplingRate(_ model: IGPT) -> Double {
    let sampler = Sampler(model: model, batch: batch)
    var times: [Double] = []
    for pass in 0..<3 {
      var rngs = (0..<batch).map { SeededRandom(seed: seed &+ UInt64(100 + pass * batch + $0)) }
      let start = DispatchTime.now().uptimeNanoseconds
      _ = sampler.generate(length: seq, prefixes: Array(repeating: [], count: batch), temperature: 1, topK: nil, rngs: &rngs)
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return Double(batch * seq) / times.sorted()[1]
  }

  private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

  /// Attention's GFLOP/s in the profiled step: the products its kernels really do (masked
  /// blocks skipped are not counted; 2 FLOPs per multiply-add), over the time spent in them.
  func attentionRates(ms: [String: Double]) -> [String: Double] {
    let w = Attention.work(B: batch, T: seq, C: embd, H: heads, causal: objective == .ar)
    // with recompute, each layer's forward runs twice (once more in backward)
    let calls = Double(layers), forwardCalls = calls * (recompute ? 2 : 1)
    var out: [String: Double] = [:]
    if let f = ms["attention_forward"], f > 0 { out["forward"] = round3(2 * w.forward * forwardCalls / (f / 1000) / 1e9) }
    if let b = ms["attention_backward"], b > 0 { out["backward"] = round3(2 * w.backward * calls / (b / 1000) / 1e9) }
    out["gflop_per_step"] = round3(2 * (w.forward * forwardCalls + w.backward * calls) / 1e9)
    return out
  }

}

extension ModelConfig.Objective: ExpressibleByArgument {}
