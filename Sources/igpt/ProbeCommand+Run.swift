import ArgumentParser
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe
import IGPTVQVAE

extension ProbeCommand {
  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Layer sweep of linear probes on one host; prints a table and writes JSON.",
      discussion: """
        Features at layer l are the mean over positions of norm(h_l) (0 = embeddings ... L = final norm), from forward passes only. For each layer (or set of concatenated layers) a multinomial logistic regression on standardised features is fitted with L-BFGS on the train split for each L2 strength of a grid; the strength with the best accuracy on the store's val split (a held-out part of the original train set) is kept, and its train/val/test accuracy reported. --raw-pixels adds the same solver on the images' pixels (palette colours at the store's resolution): the floor features must beat.

        Example: igpt probe run --checkpoint runs/small --layers all --raw-pixels --out probe.json
        """)

    @Option(help: "Checkpoint: step directory, run directory (newest) or model.safetensors. Without one, --raw-pixels --data STORE fits the pixel baseline alone.")
    var checkpoint: String?
    @Option(help: "Token store with labels (default: the one the checkpoint was trained on).") var data: String?
    @Option(help: "Layers: all, mid (middle third) or a list like 1,4,7.") var layers = "all"
    @Option(name: .customLong("labels-per-class"), help: "Low-data probe: train on this many seeded labels per class.")
    var labelsPerClass: Int?
    @Option(help: "Also probe the concatenation of K layers centred on the best one (0 = off).") var concat = 0
    @Flag(name: .customLong("raw-pixels"), help: "Also fit the same solver on raw pixels (the baseline).") var rawPixels = false
    @Option(help: "Use at most N train images (default: all).") var limit: Int?
    @Option(help: "Split to report as test.") var split = "test"
    @Option(help: "Images per forward pass.") var batch = 64
    @Option(help: "BERT models: average features over this many random masks.") var masks = 1
    @Option(help: "Seed (low-data sampling, BERT masks).") var seed: UInt64 = 0
    @Option(name: .customLong("max-iterations"), help: "L-BFGS iterations per L2 strength (each result says whether it converged within them).")
    var maxIterations = LinearProbe.defaultMaxIterations
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @OptionGroup var memory: MemoryOption
    @Option(help: "Write the results as JSON here.") var out: String?
    @Flag(help: "Fine-tune instead: a zero-initialised classifier on mean(norm_f(h_L)) trained with the model (L_GEN + L_CLF), Adam at a constant rate, early stopping on val.")
    var finetune = false
    @Flag(name: .customLong("clf-only"), help: "Fine-tune on L_CLF alone (no generative loss).") var clfOnly = false
    @Option(name: .customLong("finetune-steps"), help: "Most fine-tuning steps.") var finetuneSteps = 1000
    @Option(name: .customLong("finetune-lr"), help: "Fine-tuning learning rate (the paper: often 10x below pretraining's).")
    var finetuneLR = 3e-4
    @Option(name: .customLong("finetune-head-lr"), help: "The classifier's learning rate (default: --finetune-lr).")
    var finetuneHeadLR: Double?
    @Option(name: .customLong("finetune-eval-every"), help: "Steps between val-accuracy checks (early stopping after 3 without gain).")
    var finetuneEvalEvery = 100
    @Option(name: .customLong("finetune-head"), help: "Where the classifier starts: zero (the paper) or probe (a linear probe fitted on the final norm's features of the train images, L2 chosen on val; its weights are large where features vary little, so the body's first updates can cost it accuracy).")
    var finetuneHead = "zero"
    @Option(name: .customLong("finetune-head-images"), help: "Train images the head's linear probe is fitted on (the first N).")
    var finetuneHeadImages = 10_000
    @Flag(name: .customLong("finetune-cosine"), help: "Decay both fine-tuning rates on a cosine to 0 over --finetune-steps (default: constant).")
    var finetuneCosine = false
    @Option(name: .customLong("finetune-val-images"), help: "Val images the early stopping checks (default: all of val).")
    var finetuneValImages: Int?
    @Option(name: .customLong("finetune-out"), help: "A new directory for the fine-tuned checkpoint (model.safetensors, classifier.safetensors, finetune.json), written only when complete.")
    var finetuneOut: String?

    func runFineTune(model: IGPT, store: TokenStore, train: TokenSplit, trainIdx: [Int], val: TokenSplit, valIdx: [Int],
                     test: TokenSplit, testIdx: [Int]) throws {
      // the output directory is claimed before the work (an existing one is refused now, not after
      // an hour) and appears only complete
      let outDir = try finetuneOut.map { try AtomicDirectory(destination: $0) }
      let classes = (try (trainIdx.map { Int(try train.label($0)) } + valIdx.map { Int(try val.label($0)) }).max() ?? 0) + 1
      let tuner = FineTuner(model: model, classes: classes)
      let valIdx = Array(valIdx.prefix(finetuneValImages ?? valIdx.count))
      if finetuneHead == "probe" {
        try startHeadFromProbe(tuner, train: train, trainIdx: Array(trainIdx.prefix(finetuneHeadImages)), val: val, valIdx: valIdx)
      }
      var o = FineTuner.Options()
      o.steps = finetuneSteps
      o.learningRate = finetuneLR
      o.headLearningRate = finetuneHeadLR
      o.evalEvery = finetuneEvalEvery
      o.generative = !clfOnly
      o.cosine = finetuneCosine
      o.batch = min(batch, 32)
      o.seed = seed
      // between evaluations (minutes apart) a progress line: on a terminal a bar, in a log a line
      // every IGPT_PROGRESS_SECONDS
      let line = ProgressLine()
      let report = try tuner.run(train: train, trainIndices: trainIdx, val: val, valIndices: valIdx, test: test, testIndices: testIdx,
                                 options: o, log: line.log, progress: { line.update("fine-tune steps", $0, $1) })
      line.finish()
      print(String(format: "fine-tuned (%@): best val accuracy %.4f at step %d; %@ accuracy %.4f; train accuracy %.4f",
                   (clfOnly ? "L_CLF" : "L_GEN + L_CLF") as NSString, report.valAccuracy, report.bestStep, split as NSString,
                   report.testAccuracy, report.trainAccuracy))
      if let outDir {
        try outDir.write(try model.huggingFaceSafetensors(extraMetadata: ["finetuned_from": checkpoint ?? ""]), to: "model.safetensors")
        let C = model.config.embd
        let clf = try tuner.wclf.withUnsafeBufferPointer { w in
          try tuner.bclf.withUnsafeBufferPointer { b in
            try Safetensors.encode([.init(name: "wclf", shape: [C, classes], data: w), .init(name: "bclf", shape: [classes], data: b)],
                                   metadata: ["input": "mean over positions of ln_f output", "classes": "\(classes)"])
          }
        }
        try outDir.write(clf, to: "classifier.safetensors")
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try outDir.write(try e.encode(report), to: "finetune.json")
        try outDir.commit()
        logLine("wrote \(outDir.destination)/model.safetensors, classifier.safetensors, finetune.json")
      }
    }

    /// Fits the linear probe on the final norm's pooled features (the ones the head reads) and
    /// starts the fine-tuning head from it.
    func startHeadFromProbe(_ tuner: FineTuner, train: TokenSplit, trainIdx: [Int], val: TokenSplit, valIdx: [Int]) throws {
      let L = tuner.model.config.layers
      var extractor = FeatureExtractor(model: tuner.model)
      extractor.batch = batch
      let progress = ProgressLine()
      let tr = try extractor.extract(train, indices: trainIdx) { n, _ in progress.update("head features", n, trainIdx.count + valIdx.count) }[L]
      let va = try extractor.extract(val, indices: valIdx) { n, _ in progress.update("head features", trainIdx.count + n, trainIdx.count + valIdx.count) }[L]
      progress.finish()
      let fit = LinearProbe.fit("\(L)", train: tr, val: va, test: va, maxIterations: maxIterations)
      tuner.startHead(weights: fit.weights, bias: fit.bias)
      logLine(String(format: "fine-tune: head from a linear probe on layer %d (%d train images): l2 %g, train %.4f, val %.4f",
                     L, trainIdx.count, fit.result.l2, fit.result.trainAccuracy, fit.result.valAccuracy))
    }

    func validate() throws {
      if batch < 1 { throw ValidationError("--batch must be at least 1") }
      if let n = labelsPerClass, n < 1 { throw ValidationError("--labels-per-class must be at least 1") }
      if masks < 1 { throw ValidationError("--masks must be at least 1") }
      if concat < 0 { throw ValidationError("--concat must be at least 0") }
      if let limit, limit < 10 { throw ValidationError("--limit must be at least 10 images") }
      if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
      if maxIterations < 1 { throw ValidationError("--max-iterations must be at least 1") }
      if checkpoint == nil && !(rawPixels && data != nil) {
        throw ValidationError("give --checkpoint (or --raw-pixels --data STORE for the pixel baseline alone)")
      }
      if checkpoint == nil && (finetune || layers != "all" || concat > 0 || masks != 1) {
        throw ValidationError("--finetune, --layers, --concat and --masks need --checkpoint (without one only the pixel baseline is fitted)")
      }
      if finetuneSteps < 1 { throw ValidationError("--finetune-steps must be at least 1") }
      if !(finetuneLR > 0 && finetuneLR.isFinite) { throw ValidationError("--finetune-lr must be positive") }
      if let lr = finetuneHeadLR, !(lr > 0 && lr.isFinite) { throw ValidationError("--finetune-head-lr must be positive") }
      if !["probe", "zero"].contains(finetuneHead) { throw ValidationError("--finetune-head must be probe or zero (got \(finetuneHead))") }
      if finetuneHeadImages < 10 { throw ValidationError("--finetune-head-images must be at least 10") }
      if let n = finetuneValImages, n < 1 { throw ValidationError("--finetune-val-images must be at least 1") }
      if finetuneEvalEvery < 1 { throw ValidationError("--finetune-eval-every must be at least 1") }
      if let out = finetuneOut, FileManager.default.fileExists(atPath: out) {
        throw ValidationError("--finetune-out \(out) already exists: choose a new directory or remove it")
      }
    }

    static func pad(_ s: String) -> String { s.count >= 10 ? s : s + String(repeating: " ", count: 10 - s.count) }

    /// The images each split contributes: train (limited, or a seeded few per class), all of val and test.
    struct Selection {
      var train, val, test: TokenSplit
      var trainIdx, valIdx, testIdx: [Int]
      var total: Int { trainIdx.count + valIdx.count + testIdx.count }
    }

    func select(_ store: TokenStore) throws -> Selection {
      guard store.manifest.splits["val"] != nil else {
        throw CleanError("\(store.path) has no val split to choose the L2 strength on (prepare it with --val-fraction > 0)")
      }
      let train = try store.split("train"), val = try store.split("val"), test = try store.split(split)
      var trainIdx = Array(0..<min(train.count, limit ?? train.count))
      if let n = labelsPerClass {
        trainIdx = LinearProbe.labelsPerClass(try trainIdx.map { Int(try train.label($0)) }, perClass: n, seed: seed)
      }
      return Selection(train: train, val: val, test: test, trainIdx: trainIdx, valIdx: Array(0..<val.count), testIdx: Array(0..<test.count))
    }

    /// The raw-pixel baseline's inputs: the images the tokens decode to (a latent store's as
    /// its VQ-VAE decodes them).
    func pixels(_ store: TokenStore, _ s: Selection) throws -> ProbeSweep.Splits {
      let decoder = try VQVAETokenDecoder.forStore(store)
      return ProbeSweep.Splits(
        train: try FeatureExtractor.rawPixels(s.train, indices: s.trainIdx, decoder: decoder),
        val: try FeatureExtractor.rawPixels(s.val, indices: s.valIdx, decoder: decoder),
        test: try FeatureExtractor.rawPixels(s.test, indices: s.testIdx, decoder: decoder),
        input: FeatureExtractor.pixelsInput(store))
    }

    func run() throws {
      try memory.apply()
      Parallel.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
      BLAS.setThreads(1)
      guard let checkpoint else { return try runPixelsOnly() }
      let resolved = try CheckpointArgument.load(checkpoint)
      let store = try CheckpointArgument.store(data, resolved)
      let model = resolved.model
      let chosen = try LinearProbe.parseLayers(layers, modelLayers: model.config.layers)
      let sel = try select(store)
      logLine("igpt probe: \(resolved.description), layers \(chosen.map(String.init).joined(separator: ",")) of \(model.config.layers); \(sel.trainIdx.count) train, \(sel.valIdx.count) val, \(sel.testIdx.count) \(split) images")

      if finetune {
        try runFineTune(model: model, store: store, train: sel.train, trainIdx: sel.trainIdx, val: sel.val, valIdx: sel.valIdx,
                        test: sel.test, testIdx: sel.testIdx)
        return
      }
      var extractor = FeatureExtractor(model: model)
      extractor.batch = batch
      extractor.masks = masks
      extractor.seed = seed
      let deepest = ProbeSweep.deepestLayer(layers: chosen, modelLayers: model.config.layers, concat: concat)
      extractor.deepestLayer = deepest
      // every split's features at each layer up to the deepest, kept until the probes are fitted
      try MemoryBudget.check(4 * Double(sel.total) * Double(deepest + 1) * Double(model.config.embd) * Double(max(1, masks > 1 ? 2 : 1))
                               + MemoryBudget.model(model.config)
                               + MemoryBudget.activations(model.config, batch: batch, seq: model.config.seq, threads: Parallel.threads, recompute: true),
                             for: "features of \(sel.total) images at \(deepest + 1) layers")
      if deepest < model.config.layers {
        logLine("features: forward passes stop at layer \(deepest) (blocks \(deepest + 1)...\(model.config.layers) are not needed)")
      }
      let start = Date()
      let progress = ProgressLine()
      var feats: [String: [FeatureSet]] = [:]
      var done = 0
      for (name, s, idx) in [("train", sel.train, sel.trainIdx), ("val", sel.val, sel.valIdx), (split, sel.test, sel.testIdx)] {
        feats[name] = try extractor.extract(s, indices: idx) { n, _ in progress.update("features", done + n, sel.total) }
        done += idx.count
      }
      let featureSeconds = Date().timeIntervalSince(start)
      let tokensPerSecond = Double(sel.total * model.config.seq) / featureSeconds
      progress.finish()
      logLine(String(format: "features: %d images in %.1f s (%.0f tokens/s)", sel.total, featureSeconds, tokensPerSecond))

      let results = ProbeSweep.run(
        layers: chosen, modelLayers: model.config.layers,
        layer: { ProbeSweep.Splits(train: feats["train"]![$0], val: feats["val"]![$0], test: feats[split]![$0]) },
        concat: concat, pixels: rawPixels ? try pixels(store, sel) : nil, maxIterations: maxIterations, fitted: logFitted)
      try report(results, checkpoint: resolved.description, store: store, selection: sel, tokensPerSecond: tokensPerSecond)
    }

    /// `--raw-pixels --data STORE` without a checkpoint: the baseline alone (any resolution or palette).
    func runPixelsOnly() throws {
      let store = try TokenStore(path: data!)
      let sel = try select(store)
      logLine("igpt probe: raw pixels of \(store.path) (\(store.manifest.sequenceLength) tokens of \(store.vocab) \(store.palette == nil ? "VQ-VAE codes, decoded" : "colours"), \(store.manifest.channels) channels); \(sel.trainIdx.count) train, \(sel.valIdx.count) val, \(sel.testIdx.count) \(split) images")
      let results = ProbeSweep.run(layers: [], modelLayers: 0, layer: { _ in fatalError("no layers") },
                                   pixels: try pixels(store, sel), maxIterations: maxIterations, fitted: logFitted)
      try report(results, checkpoint: nil, store: store, selection: sel, tokensPerSecond: nil)
    }

    func logFitted(_ r: LinearProbe.Result) {
      let unconverged = r.converged == false ? String(format: "; L-BFGS stopped at its iteration limit, max gradient %.1e", r.gradientMax ?? .nan) : ""
      logLine(String(format: "  %@ width %4d  l2 %-6g  train %.4f  val %.4f  %@ %.4f  (%.1f s%@)", Self.pad(r.features) as NSString, r.width, r.l2,
                     r.trainAccuracy, r.valAccuracy, split as NSString, r.testAccuracy, r.seconds, unconverged as NSString))
    }

    /// Prints the table and writes --out.
    func report(_ results: [LinearProbe.Result], checkpoint: String?, store: TokenStore, selection sel: Selection,
                tokensPerSecond: Double?) throws {
      let bestLayer = ProbeSweep.bestLayer(results)
      print("layer      width  l2       train    val      \(split)")
      for r in results {
        print(String(format: "%@ %5d  %-7g  %.4f   %.4f   %.4f%@", Self.pad(r.features) as NSString, r.width, r.l2, r.trainAccuracy, r.valAccuracy,
                     r.testAccuracy, (r.features == bestLayer?.features ? "  <- best layer (by val)" : r.input.map { "  (\($0))" } ?? "") as NSString))
      }
      guard let out else { return }
      struct Report: Encodable {
        var checkpoint: String?
        var store: String
        var testSplit: String
        var trainImages: Int
        var labelsPerClass: Int?
        var bestLayer: String?
        var featureTokensPerSecond: Double?
        var results: [LinearProbe.Result]
      }
      let e = JSONEncoder()
      e.outputFormatting = [.prettyPrinted, .sortedKeys]
      let report = Report(checkpoint: checkpoint, store: store.path, testSplit: split, trainImages: sel.trainIdx.count,
                          labelsPerClass: labelsPerClass, bestLayer: bestLayer?.features, featureTokensPerSecond: tokensPerSecond,
                          results: results)
      try e.encode(report).write(to: URL(fileURLWithPath: out), options: .atomic)
      logLine("wrote \(out)")
    }
  }
}
