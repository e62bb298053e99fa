import Foundation
import IGPTVQVAE
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe

/// A probe job in progress on the coordinator: the parameter snapshot it uses, its feature
/// microbatches (scheduled between training tasks), the features collected, and the probes
/// fitted on a background thread once they are all in.
final class ProbeRun {
  struct FeatureTask {
    var meta: Wire.Task
    var body: Data
    var split: Int
    /// Position of the task's first image among the split's chosen images.
    var offset: Int
    /// Which of the BERT masks (0 for AR models).
    var pass: Int
  }

  let jobId: Int
  let step: Int
  let version: UInt64
  let paramsPayload: Data
  let request: ProbeJob.Request
  let layers: [Int]
  let modelLayers: Int
  /// The deepest layer the sweep reads: workers' feature passes stop there.
  let deepest: Int
  let width: Int
  let passes: Int
  /// Tasks in order; `tasks[id - firstTaskId]` is task id.
  private(set) var tasks: [FeatureTask] = []
  let firstTaskId: UInt64
  private var stored: Set<UInt64> = []
  /// pass -> split (train, val, test) -> layer -> count x C; averaged over passes in pass order.
  var features: [[[[Float]]]]
  let labels: [[Int]]
  /// The raw-pixel baseline's features, when the job asks for it (built here, no model needed).
  let pixels: ProbeSweep.Splits?
  let started = Date()
  /// Compute seconds workers spent on this job's features, and on training meanwhile.
  var probeSeconds = 0.0
  var trainingSeconds = 0.0
  private let lock = NSLock()
  private var outcome: Result<[LinearProbe.Result], Error>?
  private(set) var evaluating = false
  var featureSeconds = 0.0

  static let splitNames = ["train", "val", "test"]
  static let chunk = 32

  init(job: ProbeJob, step: Int, model: IGPT, store: TokenStore, firstTaskId: UInt64) throws {
    jobId = job.id
    self.step = step
    request = job.request
    version = Message.probeSnapshotBase + UInt64(job.id)
    self.firstTaskId = firstTaskId
    paramsPayload = GradientCodec.encode(model.params, count: model.parameterCount)
    modelLayers = model.config.layers
    width = model.config.embd
    layers = try LinearProbe.parseLayers(job.request.layers, modelLayers: model.config.layers)
    deepest = ProbeSweep.deepestLayer(layers: layers, modelLayers: modelLayers, concat: job.request.concat)
    let bert = model.config.objective == .bert
    passes = bert ? max(1, job.request.masks) : 1
    var labels: [[Int]] = []
    var chosen: [[Int]] = []
    for (s, (split, idx)) in try Self.images(job.request, store: store).enumerated() {
      chosen.append(idx)
      labels.append(try idx.map { Int(try split.label($0)) })
      tasks += try Self.featureTasks(split, splitIndex: s, images: idx, passes: passes, bert: bert, seed: job.request.seed, step: step,
                                     deepest: deepest, firstId: firstTaskId + UInt64(tasks.count))
    }
    self.labels = labels
    let layerCount = deepest + 1
    let perPass = labels.map { l in Array(repeating: [Float](repeating: 0, count: l.count * model.config.embd), count: layerCount) }
    features = Array(repeating: perPass, count: passes)
    if job.request.rawPixels {
      let decoder = try VQVAETokenDecoder.forStore(store)
      func set(_ s: Int) throws -> FeatureSet {
        try FeatureExtractor.rawPixels(try store.split(Self.splitNames[s]), indices: chosen[s], decoder: decoder)
      }
      pixels = ProbeSweep.Splits(train: try set(0), val: try set(1), test: try set(2), input: FeatureExtractor.pixelsInput(store))
    } else {
      pixels = nil
    }
  }

  /// The images a job reads from train, val and test (in `splitNames` order): the first
  /// trainImages (or a seeded few per class of them) and the first evalImages of the others.
  static func images(_ request: ProbeJob.Request, store: TokenStore) throws -> [(TokenSplit, [Int])] {
    try splitNames.enumerated().map { s, name in
      guard store.manifest.splits[name] != nil else { throw ProbeError("the token store has no \(name) split") }
      let split = try store.split(name)
      var idx = Array(0..<min(split.count, s == 0 ? request.trainImages : request.evalImages))
      if s == 0, let n = request.labelsPerClass {
        idx = LinearProbe.labelsPerClass(try idx.map { Int(try split.label($0)) }, perClass: n, seed: request.seed)
      }
      return (split, idx)
    }
  }

  /// A split's chosen images in chunks, each chunk once per BERT mask pass, numbered from firstId.
  static func featureTasks(_ split: TokenSplit, splitIndex s: Int, images idx: [Int], passes: Int, bert: Bool, seed: UInt64, step: Int,
                           deepest: Int, firstId: UInt64) throws -> [FeatureTask] {
    var tasks: [FeatureTask] = []
    let T = split.sequenceLength
    for offset in stride(from: 0, to: idx.count, by: chunk) {
      let part = Array(idx[offset..<min(idx.count, offset + chunk)])
      var tokens = [Int32](repeating: 0, count: part.count * T)
      try tokens.withUnsafeMutableBufferPointer { t in
        for (i, j) in part.enumerated() { try split.copyTokens(j, into: t.baseAddress! + i * T) }
      }
      for pass in 0..<passes {
        // the masks `igpt probe run --seed` draws for these images
        let mask = bert ? FeatureExtractor.masks(seed: seed, split: splitNames[s], images: part, pass: pass, T: T) : []
        let id = firstId + UInt64(tasks.count)
        let meta = Wire.Task(id: id, kind: .features, step: step, micro: Int(id - firstId), count: part.count, length: T, scale: 1,
                             hasMask: !mask.isEmpty, deepest: deepest)
        tasks.append(FeatureTask(meta: meta, body: Wire.Task.body(tokens: tokens, mask: mask), split: s, offset: offset, pass: pass))
      }
    }
    return tasks
  }

  var taskIds: [UInt64] { tasks.map(\.meta.id) }
  var nextTaskId: UInt64 { firstTaskId + UInt64(tasks.count) }
  var allFeaturesIn: Bool { stored.count == tasks.count }

  func task(_ id: UInt64) -> FeatureTask? {
    guard id >= firstTaskId, id - firstTaskId < UInt64(tasks.count) else { return nil }
    return tasks[Int(id - firstTaskId)]
  }

  /// Stores a worker's features for task id (throws on a malformed payload).
  func store(_ id: UInt64, payload: Data) throws {
    guard let t = task(id) else { throw ProtocolError("no feature task \(id) in probe job \(jobId)") }
    let n = (deepest + 1) * t.meta.count * width
    var f = [Float](repeating: 0, count: n)
    try f.withUnsafeMutableBufferPointer { try GradientCodec.decode(payload, into: $0.baseAddress!, count: n) }
    guard f.allSatisfy(\.isFinite) else { throw ProtocolError("feature payload holds NaN or infinite values") }
    for l in 0...deepest {
      for i in 0..<(t.meta.count * width) { features[t.pass][t.split][l][t.offset * width + i] = f[(l * t.meta.count) * width + i] }
    }
    stored.insert(id)
  }

  /// Fits the probes on a background thread; `finished` reports the outcome.
  func evaluate() {
    evaluating = true
    featureSeconds = Date().timeIntervalSince(started)
    let request = self.request, layers = self.layers, labels = self.labels, width = self.width
    let modelLayers = self.modelLayers, pixels = self.pixels, passes = self.passes, features = self.features
    Thread.detachNewThread { [self] in
      // BERT: the mean over masks, summed in pass order as `probe run` does (arrival order cannot
      // change the bytes), here and not on the event loop (it can be large)
      var averaged = features[0].map { $0.map { [Float](repeating: 0, count: $0.count) } }
      for pass in 0..<passes {
        for s in averaged.indices { for l in averaged[s].indices { FeatureExtractor.addPass(features[pass][s][l], into: &averaged[s][l], at: 0) } }
      }
      for s in averaged.indices { for l in averaged[s].indices { FeatureExtractor.finishMean(&averaged[s][l], passes: passes) } }
      func set(_ l: Int, _ s: Int) -> FeatureSet { FeatureSet(width: width, values: averaged[s][l], labels: labels[s]) }
      let results = ProbeSweep.run(
        layers: layers, modelLayers: modelLayers, layer: { ProbeSweep.Splits(train: set($0, 0), val: set($0, 1), test: set($0, 2)) },
        concat: request.concat, pixels: pixels, maxIterations: request.maxIterations)
      lock.withLock { outcome = .success(results) }
    }
  }

  /// The probes' results once fitted.
  var finished: Result<[LinearProbe.Result], Error>? { lock.withLock { outcome } }
}
