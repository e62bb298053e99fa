import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTTestSupport
import Testing
@testable import IGPTTraining

@Suite(.serialized) struct TrainingTests {
  @Test func scheduleValuesAtKnownSteps() {
    let s = LearningRateSchedule(peak: 0.01, warmup: 10, steps: 110)
    #expect(abs(s.rate(at: 0) - 0.001) < 1e-12)
    #expect(abs(s.rate(at: 9) - 0.01) < 1e-12)
    #expect(abs(s.rate(at: 10) - 0.01) < 1e-12)   // cosine starts at the peak
    #expect(abs(s.rate(at: 60) - 0.005) < 1e-12)  // halfway down
    #expect(abs(s.rate(at: 110)) < 1e-12)         // zero at the end
    #expect(LearningRateSchedule(peak: 1, warmup: 0, steps: 4).rate(at: 0) == 1)
  }

  @Test func clippingScalesTheGradientToTheLimit() {
    Parallel.threads = 2
    let n = 40
    let a = Optimizer(count: n), b = Optimizer(count: n)
    var g = (0..<n).map { Float($0) - 20 }
    let norm = Double(g.map { Double($0) * Double($0) }.reduce(0, +).squareRoot())
    g.withUnsafeBufferPointer { a.accumulate($0.baseAddress!) }
    let scaled = g.map { $0 * Float(0.5 / norm) }
    scaled.withUnsafeBufferPointer { b.accumulate($0.baseAddress!) }
    var pa = [Float](repeating: 1, count: n), pb = pa
    let reported = a.update(params: &pa, learningRate: 0.1, clip: 0.5, beta1: 0.9, beta2: 0.95, weightDecay: 0)
    b.update(params: &pb, learningRate: 0.1, clip: 0, beta1: 0.9, beta2: 0.95, weightDecay: 0)
    #expect(abs(reported - norm) < 1e-9 * norm)
    for i in 0..<n { #expect(abs(pa[i] - pb[i]) < 1e-6) }
    for i in 0..<n { #expect(abs(a.m[i] - b.m[i]) < 1e-7) }
  }

  @Test func configErrorsNameTheKey() throws {
    let cases: [(String, String)] = [
      ("model: {layers: 2, colour: 3}", "model.colour"),
      ("bogus: {}", "bogus"),
      ("train: {lr: fast}", "train.lr"),
      ("train: {batch: 8, microbatch: 3}", "train.microbatch"),
      ("model: {embd: 30, heads: 4}", "model.embd"),
      ("model: {objective: gan}", "model.objective"),
      ("checkpoint: {keep: 0}", "checkpoint.keep"),
      ("train: [1, 2]", "train"),
      ("train: {seed: -1}", "train.seed"),
      ("data: {augment: {translate: 9}}", "data.augment.translate"),
      ("data: {augment: {translate: -1}}", "data.augment.translate"),
      ("data: {augment: {rotate: 10}}", "data.augment.rotate"),
      ("data: {augment: {flip: 1}}", "data.augment.flip"),
      ("data: {augment: 2}", "data.augment"),
      ("probes: {max_iterations: 0}", "probes.max_iterations"),
    ]
    for (yaml, key) in cases {
      #expect { try RunConfig.parse(yaml, name: "c.yaml") } throws: { e in
        "\(e)".contains(key) && "\(e)".hasPrefix("c.yaml") && !"\(e)".contains("\n")
      }
    }
    let c = try RunConfig.parse("model: {seq: 100, vocab: 16}")
    #expect(throws: ConfigError.self) { try c.modelConfig(storeSequenceLength: 196, storeVocab: 16) }
    #expect(throws: ConfigError.self) { try RunConfig.parse("model: {vocab: 8}").modelConfig(storeSequenceLength: 196, storeVocab: 16) }
    #expect(try RunConfig.parse("model: {seq: 196}").modelConfig(storeSequenceLength: 196, storeVocab: 16).seq == 196)
  }

  @Test func shippedConfigsLoad() throws {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("configs")
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
    for name in ["fashion-mnist-tiny", "fashion-mnist-small", "cifar10-small", "igpt-s", "igpt-m", "igpt-l"] {
      #expect(files.contains(name + ".yaml"))
    }
    // (vqvae-*.yaml are VQ-VAE configs: VQVAETests load them)
    for f in files where !f.hasPrefix("vqvae-") { _ = try RunConfig.load(path: dir.appendingPathComponent(f).path) }
    let s = try RunConfig.load(path: dir.appendingPathComponent("igpt-s.yaml").path)
    #expect(ParameterLayout(try s.modelConfig(storeSequenceLength: 1024, storeVocab: 512)).count == 76_571_648)
  }

  @Test func dataOrderIsAFunctionOfSeedAndStep() {
    var a = DataOrder(count: 10, seed: 1), b = DataOrder(count: 10, seed: 1)
    let epoch = (0..<10).map { a.image(at: $0) }
    #expect(Set(epoch) == Set(0..<10))
    #expect(b.microbatch(step: 3, micro: 1, batch: 4, microbatch: 2) == (14..<16).map { a.image(at: $0) })
    #expect(DataOrder.permutation(count: 10, seed: 1, epoch: 0) != DataOrder.permutation(count: 10, seed: 1, epoch: 1))
  }

  /// Microbatches summed in order equal one big batch (within float rounding) and repeat exactly.
  @Test(arguments: ["ar", "bert"])
  func microbatchAccumulation(objective: String) throws {
    let store = try TokenStore(path: try TrainingFixtures.store())
    func gradient(micro: Int) throws -> [Float] {
      var c = try TrainingFixtures.config(store: store.path, objective: objective)
      c.train.microbatch = micro
      let t = try Trainer(config: c, store: store)
      let scale = Float(micro) / 8
      t.optimizer.zeroGradient()
      // one shared mask draw: BERT masks per microbatch would differ, so build the batch's masks once
      var all = try Microbatch.load((0..<8).map { $0 }, from: t.train, objective: t.model.config.objective, maskSeed: 9)
      for m in 0..<(8 / micro) {
        let r = (m * micro * 16)..<((m + 1) * micro * 16)
        let mb = Microbatch(count: micro, length: 16, tokens: Array(all.tokens[r]), mask: all.mask.isEmpty ? [] : Array(all.mask[r]))
        Gradient.compute(model: t.model, microbatch: mb, scale: scale)
        t.optimizer.accumulate(t.model.grads)
      }
      all.count = 8
      return Array(UnsafeBufferPointer(start: t.optimizer.gradient, count: t.optimizer.count))
    }
    let whole = try gradient(micro: 8), split = try gradient(micro: 2), again = try gradient(micro: 2)
    let scale = whole.map { abs($0) }.max()!
    #expect(zip(whole, split).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    #expect(split.withUnsafeBytes { Array($0) } == again.withUnsafeBytes { Array($0) })
  }

  /// With one microbatch per step the optimizer uses the model's gradient slab (one slab less)
  /// and the run's bytes equal a separately summed gradient's.
  @Test func oneMicrobatchStepsShareTheGradientSlab() throws {
    let store = try TokenStore(path: try TrainingFixtures.store())
    var c = try TrainingFixtures.config(store: store.path, objective: "ar")
    c.train.microbatch = c.train.batch
    let shared = try Trainer(config: c, store: store)
    #expect(shared.optimizer.sharesGradient)
    let reference = try Trainer(config: c, store: store)
    let separate = Optimizer(count: reference.model.parameterCount)
    #expect(!separate.sharesGradient)
    let t = c.train
    for s in 0..<3 {
      try shared.trainStep()
      separate.zeroGradient()
      Gradient.compute(model: reference.model, microbatch: try reference.microbatch(step: s, micro: 0), scale: 1)
      separate.accumulate(reference.model.grads)
      separate.update(params: reference.model.params, learningRate: reference.schedule.rate(at: s), clip: t.clip,
                      beta1: t.beta1, beta2: t.beta2, weightDecay: t.weightDecay)
    }
    func bytes(_ p: UnsafeMutablePointer<Float>) -> [UInt8] {
      Array(UnsafeRawBufferPointer(start: p, count: reference.model.parameterCount * 4))
    }
    #expect(bytes(shared.model.params) == bytes(reference.model.params))
    #expect(bytes(shared.optimizer.m) == bytes(separate.m))
    #expect(bytes(shared.optimizer.v) == bytes(separate.v))
  }

  /// 2N steps straight, and N steps, a checkpoint and N more from it, give the same bytes.
  @Test(arguments: ["ar", "bert"])
  func resumeIsExact(objective: String) throws {
    let store = try TokenStore(path: try TrainingFixtures.store())
    let c = try TrainingFixtures.config(store: store.path, objective: objective, steps: 6)
    let straight = try Trainer(config: c, store: store)
    for _ in 0..<6 { _ = try straight.trainStep() }
    let run = Fixtures.directory("resume")
    let first = try Trainer(config: c, store: store)
    for _ in 0..<3 { _ = try first.trainStep() }
    try first.checkpoint(runDir: run)
    let loaded = try #require(Checkpoint.newestGood(runDir: run) { _ in })
    #expect(loaded.state.step == 3)
    let second = try Trainer(config: c, store: store, resumeFrom: loaded)
    for _ in 0..<3 { _ = try second.trainStep() }
    let n = straight.model.parameterCount
    #expect(TrainingFixtures.bytes(straight.model.params, n) == TrainingFixtures.bytes(second.model.params, n))
    #expect(TrainingFixtures.bytes(straight.optimizer.m, n) == TrainingFixtures.bytes(second.optimizer.m, n))
    #expect(TrainingFixtures.bytes(straight.optimizer.v, n) == TrainingFixtures.bytes(second.optimizer.v, n))
    #expect(straight.optimizer.steps == second.optimizer.steps)
  }

  @Test func corruptCheckpointsFallBackToTheNewestGoodOne() throws {
    let store = try TokenStore(path: try TrainingFixtures.store())
    let c = try TrainingFixtures.config(store: store.path)
    let t = try Trainer(config: c, store: store)
    let run = Fixtures.directory("corruptckpt")
    for _ in 0..<2 { _ = try t.trainStep() }
    let good = try t.checkpoint(runDir: run)
    _ = try t.trainStep()
    let flipped = try t.checkpoint(runDir: run)
    _ = try t.trainStep()
    let truncated = try t.checkpoint(runDir: run)
    let model = truncated + "/model.safetensors"
    let d = FileManager.default.contents(atPath: model)!
    FileManager.default.createFile(atPath: model, contents: d.prefix(d.count - 100))
    let opt = flipped + "/optimizer.safetensors"
    var o = FileManager.default.contents(atPath: opt)!
    o[o.count - 7] ^= 0x10
    FileManager.default.createFile(atPath: opt, contents: o)
    var warnings: [String] = []
    let loaded = try #require(Checkpoint.newestGood(runDir: run) { warnings.append($0) })
    #expect(loaded.path == good && loaded.state.step == 2)
    #expect(warnings.count == 2)
    #expect(warnings[0].contains("model.safetensors") && warnings[0].contains("checksum"))
    #expect(warnings[1].contains("optimizer.safetensors"))
  }

  @Test func checkpointsKeepTheLastK() throws {
    let store = try TokenStore(path: try TrainingFixtures.store())
    var c = try TrainingFixtures.config(store: store.path)
    c.checkpoint.keep = 2
    let t = try Trainer(config: c, store: store)
    let run = Fixtures.directory("keep")
    for _ in 0..<4 {
      _ = try t.trainStep()
      try t.checkpoint(runDir: run)
    }
    #expect(Checkpoint.list(runDir: run).map { ($0 as NSString).lastPathComponent } == ["step-00000004", "step-00000003"])
    // the model file is HF layout with its shape in __metadata__
    let file = try Safetensors.decode(FileManager.default.contents(atPath: Checkpoint.list(runDir: run)[0] + "/model.safetensors")!)
    #expect(file.metadata["n_layer"] == "2" && file.metadata["n_ctx"] == "16" && file.metadata["objective"] == "ar")
    // streamed from the slabs, it is byte for byte what Safetensors.encode would build
    let newest = Checkpoint.list(runDir: run)[0]
    let written = FileManager.default.contents(atPath: newest + "/model.safetensors")!
    #expect(written == (try t.model.huggingFaceSafetensors(extraMetadata: ["step": "4"])))
    let optimizer = FileManager.default.contents(atPath: newest + "/optimizer.safetensors")!
    let n = t.optimizer.count
    let encoded = try Safetensors.encode(
      [.init(name: "adam.m", shape: [n], data: UnsafeBufferPointer(start: t.optimizer.m, count: n)),
       .init(name: "adam.v", shape: [n], data: UnsafeBufferPointer(start: t.optimizer.v, count: n))],
      metadata: ["steps": "4", "format": "igpt-adamw"])
    #expect(optimizer == encoded)
  }

  @Test func trainingLowersTheLoss() throws {
    let store = try TokenStore(path: try TrainingFixtures.store())
    let c = try TrainingFixtures.config(store: store.path, steps: 40)
    let t = try Trainer(config: c, store: store)
    let before = try #require(try t.validationLoss())
    for _ in 0..<40 { _ = try t.trainStep() }
    let after = try #require(try t.validationLoss())
    #expect(abs(before - log(4.0)) < 1e-6)
    #expect(after < before - 0.05)
  }
}

@Suite struct SamplerTests {
  /// The KV-cache sampler's logits equal the full forward pass's at every position: head width
  /// 8 (padded to 16 in the cache) in one key panel, and 32 over three panels (150 positions).
  @Test(arguments: [(16, 12), (64, 150)])
  func cachedLogitsMatchTheFullForward(embd: Int, seq: Int) throws {
    Parallel.threads = 2
    let model = try IGPT(config: ModelConfig(layers: 2, embd: embd, heads: 2, seq: seq, vocab: 5))
    model.initialize(seed: 1)
    var rng = SeededRandom(seed: 2)
    model.perturbForTesting(rng: &rng)
    let B = 3
    let tokens = (0..<(B * seq)).map { _ in Int32(rng.next() % 5) }
    let sampler = Sampler(model: model, batch: B)
    for t in 0..<seq {
      let prev = (0..<B).map { t == 0 ? 0 : tokens[$0 * seq + t - 1] }
      let cached = sampler.step(previous: prev)
      var prefix = [Int32](repeating: 0, count: max(1, B * t))
      for b in 0..<B { for j in 0..<t { prefix[b * t + j] = tokens[b * seq + j] } }
      let full = prefix.withUnsafeBufferPointer { model.nextLogits(prefix: $0.baseAddress!, batch: B, length: t) }
      let worst = zip(full, cached).map { abs($0 - $1) }.max()!
      #expect(worst < 1e-4, "position \(t): logits off by \(worst)")
    }
  }

  @Test func drawRespectsTopKAndTemperatureZero() {
    var rng = SeededRandom(seed: 1)
    let logits: [Float] = [0, 3, 1, 2.9]
    #expect(Sampler.draw(logits[...], temperature: 0, topK: nil, rng: &rng) == 1)
    for _ in 0..<200 {
      let t = Sampler.draw(logits[...], temperature: 5, topK: 2, rng: &rng)
      #expect(t == 1 || t == 3)
    }
  }
}
