import ArgumentParser
import Foundation
import IGPTCluster
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe

/// `igpt probe`: how good a checkpoint's features are, by linear probes.
struct ProbeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "probe",
    abstract: "Linear probes on a checkpoint's features (the paper's measure of representation quality).",
    subcommands: [Run.self, Submit.self, List.self])

  struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Queue a probe job on a running coordinator (its workers extract the features between training steps).",
      discussion: """
        The job uses the parameters of the step at which it starts; its results go to RUN/probes.jsonl and `igpt probe list`. Defaults come from the run config's probes section.

        Example: igpt probe submit --coordinator tcp://127.0.0.1:5555 --layers 2,4,6 --concat 3 --raw-pixels
        """)
    @Option(help: "Coordinator endpoint.") var coordinator: String
    @OptionGroup var keys: ClientKeyOptions
    @Option(help: "Layers: all, mid or a list like 1,4,7 (default: the config's probes.layers).") var layers: String?
    @Option(name: .customLong("train-images"), help: "Train images to fit on (default: probes.train_images).") var trainImages: Int?
    @Option(name: .customLong("eval-images"), help: "Val and test images (default: probes.eval_images).") var evalImages: Int?
    @Option(name: .customLong("labels-per-class"), help: "Low-data probe: this many train images per class, seeded (default: probes.labels_per_class).")
    var labelsPerClass: Int?
    @Option(help: "Also probe the concatenation of K layers centred on the best one (default: probes.concat).") var concat: Int?
    @Flag(name: .customLong("raw-pixels"), help: "Also fit the raw-pixel baseline (default: probes.raw_pixels).") var rawPixels = false
    @Option(help: "BERT models: average features over this many random masks (default: probes.masks).") var masks: Int?
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 10

    func validate() throws {
      if let n = labelsPerClass, n < 1 { throw ValidationError("--labels-per-class must be at least 1") }
      if let k = concat, k < 0 { throw ValidationError("--concat must be at least 0") }
      if let k = masks, k < 1 { throw ValidationError("--masks must be at least 1") }
    }

    func run() throws {
      let client = try ClusterClient(endpoint: coordinator, keys: try keys.load())
      let submit = Meta.ProbeSubmit(layers: layers, trainImages: trainImages, evalImages: evalImages, labelsPerClass: labelsPerClass,
                                    concat: concat, rawPixels: rawPixels ? true : nil, masks: masks)
      let reply = try client.request(Message(.probeSubmit, meta: submit), expecting: .probeList, timeout: timeout)
      let list = try reply.decodeMeta(Meta.ProbeList.self)
      guard let job = list.jobs.first else { throw CleanError("the coordinator queued nothing") }
      print("queued \(job.summary)")
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a coordinator's probe jobs and, when done, their accuracies.")
    @Option(help: "Coordinator endpoint.") var coordinator: String
    @OptionGroup var keys: ClientKeyOptions
    @Flag(help: "Print the jobs as JSON.") var json = false
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 10

    func run() throws {
      let client = try ClusterClient(endpoint: coordinator, keys: try keys.load())
      let list = try client.request(Message(.probeListRequest), expecting: .probeList, timeout: timeout).decodeMeta(Meta.ProbeList.self)
      if json {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        print(String(decoding: try e.encode(list.jobs), as: UTF8.self))
        return
      }
      if list.jobs.isEmpty { print("no probe jobs") }
      for job in list.jobs {
        print(job.summary)
        for r in job.results {
          print(String(format: "    layer %@  l2 %-7g  train %.4f  val %.4f  test %.4f%@", Run.pad(r.features) as NSString, r.l2,
                       r.trainAccuracy, r.valAccuracy, r.testAccuracy, (r.features == job.bestLayer ? "  <- best" : "") as NSString))
        }
      }
    }
  }

  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Layer sweep of linear probes on one host; prints a table and writes JSON.",
      discussion: """
        Features at layer l are the mean over positions of norm(h_l) (0 = embeddings ... L = final norm), from forward passes only. For each layer (or set of concatenated layers) a multinomial logistic regression on standardised features is fitted with L-BFGS on the train split for each L2 strength of a grid; the strength with the best accuracy on the store's val split (a held-out part of the original train set) is kept, and its train/val/test accuracy reported. --raw-pixels adds the same solver on the images' pixels (palette colours at the store's resolution): the floor features must beat.

        Example: igpt probe run --checkpoint runs/small --layers all --raw-pixels --out probe.json
        """)

    @Option(help: "Checkpoint: step directory, run directory (newest) or model.safetensors.") var checkpoint: String
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
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Write the results as JSON here.") var out: String?
    @Flag(help: "Fine-tune instead: a zero-initialised classifier on mean(norm_f(h_L)) trained with the model (L_GEN + L_CLF), Adam at a constant rate, early stopping on val.")
    var finetune = false
    @Flag(name: .customLong("clf-only"), help: "Fine-tune on L_CLF alone (no generative loss).") var clfOnly = false
    @Option(name: .customLong("finetune-steps"), help: "Most fine-tuning steps.") var finetuneSteps = 1000
    @Option(name: .customLong("finetune-lr"), help: "Fine-tuning learning rate (the paper: often 10x below pretraining's).")
    var finetuneLR = 3e-4
    @Option(name: .customLong("finetune-out"), help: "Directory for the fine-tuned checkpoint (model.safetensors, classifier.safetensors, finetune.json).")
    var finetuneOut: String?

    func runFineTune(model: IGPT, store: TokenStore, train: TokenSplit, trainIdx: [Int], val: TokenSplit, valIdx: [Int],
                     test: TokenSplit, testIdx: [Int]) throws {
      let classes = (try (trainIdx.map { Int(try train.label($0)) } + valIdx.map { Int(try val.label($0)) }).max() ?? 0) + 1
      let tuner = FineTuner(model: model, classes: classes)
      var o = FineTuner.Options()
      o.steps = finetuneSteps
      o.learningRate = finetuneLR
      o.generative = !clfOnly
      o.batch = min(batch, 32)
      o.seed = seed
      let report = try tuner.run(train: train, trainIndices: trainIdx, val: val, valIndices: valIdx, test: test, testIndices: testIdx,
                                 options: o, log: logLine)
      print(String(format: "fine-tuned (%@): best val accuracy %.4f at step %d; %@ accuracy %.4f; train accuracy %.4f",
                   (clfOnly ? "L_CLF" : "L_GEN + L_CLF") as NSString, report.valAccuracy, report.bestStep, split as NSString,
                   report.testAccuracy, report.trainAccuracy))
      if let dir = finetuneOut {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let modelBytes = try model.huggingFaceSafetensors(extraMetadata: ["finetuned_from": checkpoint])
        let C = model.config.embd
        let clf = try tuner.wclf.withUnsafeBufferPointer { w in
          try tuner.bclf.withUnsafeBufferPointer { b in
            try Safetensors.encode([.init(name: "wclf", shape: [C, classes], data: w), .init(name: "bclf", shape: [classes], data: b)],
                                   metadata: ["input": "mean over positions of ln_f output", "classes": "\(classes)"])
          }
        }
        try modelBytes.write(to: URL(fileURLWithPath: dir + "/model.safetensors"), options: .atomic)
        try clf.write(to: URL(fileURLWithPath: dir + "/classifier.safetensors"), options: .atomic)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(report).write(to: URL(fileURLWithPath: dir + "/finetune.json"), options: .atomic)
        logLine("wrote \(dir)/model.safetensors, classifier.safetensors, finetune.json")
      }
    }

    func validate() throws {
      if batch < 1 { throw ValidationError("--batch must be at least 1") }
      if masks < 1 { throw ValidationError("--masks must be at least 1") }
      if concat < 0 { throw ValidationError("--concat must be at least 0") }
      if let limit, limit < 10 { throw ValidationError("--limit must be at least 10 images") }
      if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
      if finetuneSteps < 1 { throw ValidationError("--finetune-steps must be at least 1") }
      if !(finetuneLR > 0 && finetuneLR.isFinite) { throw ValidationError("--finetune-lr must be positive") }
    }

    static func pad(_ s: String) -> String { s.count >= 10 ? s : s + String(repeating: " ", count: 10 - s.count) }

    func run() throws {
      Parallel.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
      BLAS.setThreads(1)
      let resolved = try CheckpointArgument.load(checkpoint)
      let store = try CheckpointArgument.store(data, resolved)
      let model = resolved.model
      let chosen = try LinearProbe.parseLayers(layers, modelLayers: model.config.layers)
      guard store.manifest.splits["val"] != nil else {
        throw CleanError("\(store.path) has no val split to choose the L2 strength on (prepare it with --val-fraction > 0)")
      }
      let trainSplit = try store.split("train"), valSplit = try store.split("val"), testSplit = try store.split(split)
      var trainIdx = Array(0..<min(trainSplit.count, limit ?? trainSplit.count))
      if let n = labelsPerClass {
        guard n >= 1 else { throw CleanError("--labels-per-class must be at least 1") }
        trainIdx = LinearProbe.labelsPerClass(try trainIdx.map { Int(try trainSplit.label($0)) }, perClass: n, seed: seed)
      }
      let valIdx = Array(0..<valSplit.count), testIdx = Array(0..<testSplit.count)
      logLine("igpt probe: \(resolved.description), layers \(chosen.map(String.init).joined(separator: ",")) of \(model.config.layers); \(trainIdx.count) train, \(valIdx.count) val, \(testIdx.count) \(split) images")

      if finetune {
        try runFineTune(model: model, store: store, train: trainSplit, trainIdx: trainIdx, val: valSplit, valIdx: valIdx,
                        test: testSplit, testIdx: testIdx)
        return
      }
      var extractor = FeatureExtractor(model: model)
      extractor.batch = batch
      extractor.masks = masks
      extractor.seed = seed
      let start = Date()
      let progress = ProgressLine()
      var feats: [String: [FeatureSet]] = [:]
      let total = trainIdx.count + valIdx.count + testIdx.count
      var done = 0
      for (name, s, idx) in [("train", trainSplit, trainIdx), ("val", valSplit, valIdx), (split, testSplit, testIdx)] {
        feats[name] = try extractor.extract(s, indices: idx) { n, _ in progress.update("features", done + n, total) }
        done += idx.count
      }
      let featureSeconds = Date().timeIntervalSince(start)
      let tokensPerSecond = Double(total * model.config.seq) / featureSeconds
      progress.finish()
      logLine(String(format: "features: %d images in %.1f s (%.0f tokens/s)", total, featureSeconds, tokensPerSecond))

      let pixels = rawPixels
        ? ProbeSweep.Splits(
          train: try FeatureExtractor.rawPixels(trainSplit, indices: trainIdx, palette: store.palette),
          val: try FeatureExtractor.rawPixels(valSplit, indices: valIdx, palette: store.palette),
          test: try FeatureExtractor.rawPixels(testSplit, indices: testIdx, palette: store.palette))
        : nil
      let results = ProbeSweep.run(
        layers: chosen, modelLayers: model.config.layers,
        layer: { ProbeSweep.Splits(train: feats["train"]![$0], val: feats["val"]![$0], test: feats[split]![$0]) },
        concat: concat, pixels: pixels
      ) { r in
        logLine(String(format: "  %@ width %4d  l2 %-6g  train %.4f  val %.4f  %@ %.4f  (%.1f s)", Self.pad(r.features) as NSString, r.width, r.l2,
                       r.trainAccuracy, r.valAccuracy, split as NSString, r.testAccuracy, r.seconds))
      }
      let bestLayer = ProbeSweep.bestLayer(results)!
      print("layer      width  l2       train    val      \(split)")
      for r in results {
        print(String(format: "%@ %5d  %-7g  %.4f   %.4f   %.4f%@", Self.pad(r.features) as NSString, r.width, r.l2, r.trainAccuracy, r.valAccuracy,
                     r.testAccuracy, (r.features == bestLayer.features ? "  <- best layer (by val)" : "") as NSString))
      }
      if let out {
        struct Report: Encodable {
          var checkpoint: String
          var store: String
          var testSplit: String
          var trainImages: Int
          var labelsPerClass: Int?
          var bestLayer: String
          var featureTokensPerSecond: Double
          var results: [LinearProbe.Result]
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let report = Report(checkpoint: resolved.description, store: store.path, testSplit: split, trainImages: trainIdx.count,
                            labelsPerClass: labelsPerClass, bestLayer: bestLayer.features, featureTokensPerSecond: tokensPerSecond,
                            results: results)
        try e.encode(report).write(to: URL(fileURLWithPath: out), options: .atomic)
        logLine("wrote \(out)")
      }
    }
  }
}
