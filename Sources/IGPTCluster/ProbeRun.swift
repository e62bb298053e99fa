import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe

/// A probe job in progress on the coordinator: the parameter snapshot it uses, its feature
/// microbatches (handed to workers between training microbatches), the features collected,
/// and the probes fitted on a background thread once they are all in.
final class ProbeRun {
  struct FeatureTask {
    var meta: Meta.Task
    var body: Data
    var split: Int
    var offset: Int
    var sentAt: Date?
    var done = false
  }

  let jobId: Int
  let step: Int
  let version: UInt64
  let paramsPayload: Data
  let layers: [Int]
  let modelLayers: Int
  let width: Int
  var tasks: [FeatureTask] = []
  var queue: [Int] = []
  /// split (train, val, test) -> layer -> count x C
  var features: [[[Float]]]
  let labels: [[Int]]
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
    version = Message.probeVersionBase + UInt64(job.id)
    paramsPayload = GradientCodec.encode(model.params, count: model.parameterCount)
    modelLayers = model.config.layers
    width = model.config.embd
    layers = try LinearProbe.parseLayers(job.request.layers, modelLayers: model.config.layers)
    var labels: [[Int]] = []
    var id = firstTaskId
    for (s, name) in Self.splitNames.enumerated() {
      guard store.manifest.splits[name] != nil else { throw ProbeError("the token store has no \(name) split") }
      let split = try store.split(name)
      let n = min(split.count, s == 0 ? job.request.trainImages : job.request.evalImages)
      labels.append(try (0..<n).map { Int(try split.label($0)) })
      for offset in stride(from: 0, to: n, by: Self.chunk) {
        let idx = Array(offset..<min(n, offset + Self.chunk))
        var tokens = [Int32](repeating: 0, count: idx.count * split.sequenceLength)
        try tokens.withUnsafeMutableBufferPointer { t in
          for (i, j) in idx.enumerated() { try split.copyTokens(j, into: t.baseAddress! + i * split.sequenceLength) }
        }
        var mask: [UInt8] = []
        if model.config.objective == .bert {
          var rng = SeededRandom(seed: UInt64(offset) &* 31 &+ UInt64(s))
          mask = BERTMask.draw(B: idx.count, T: split.sequenceLength, rng: &rng)
        }
        let meta = Meta.Task(id: id, kind: .features, step: step, micro: tasks.count, count: idx.count, length: split.sequenceLength,
                             scale: 1, hasMask: !mask.isEmpty)
        id += 1
        tasks.append(FeatureTask(meta: meta, body: Meta.Task.body(tokens: tokens, mask: mask), split: s, offset: offset))
      }
    }
    self.labels = labels
    features = labels.map { l in Array(repeating: [Float](repeating: 0, count: l.count * model.config.embd), count: model.config.layers + 1) }
    queue = Array(tasks.indices)
  }

  var nextTaskId: UInt64 { (tasks.last?.meta.id ?? 0) + 1 }
  var allFeaturesIn: Bool { tasks.allSatisfy(\.done) }

  /// Stores a worker's features for task idx (throws on a malformed payload).
  func store(_ idx: Int, payload: Data) throws {
    let t = tasks[idx]
    let n = (modelLayers + 1) * t.meta.count * width
    var f = [Float](repeating: 0, count: n)
    try f.withUnsafeMutableBufferPointer { try GradientCodec.decode(payload, into: $0.baseAddress!, count: n) }
    for l in 0...modelLayers {
      for i in 0..<(t.meta.count * width) { features[t.split][l][t.offset * width + i] = f[(l * t.meta.count) * width + i] }
    }
    tasks[idx].done = true
  }

  /// Fits the probes on a background thread; `finished` reports the outcome.
  func evaluate() {
    evaluating = true
    featureSeconds = Date().timeIntervalSince(started)
    let layers = self.layers, features = self.features, labels = self.labels, width = self.width
    Thread.detachNewThread { [self] in
      func set(_ l: Int, _ s: Int) -> FeatureSet { FeatureSet(width: width, values: features[s][l], labels: labels[s]) }
      let results = layers.map { l in LinearProbe.evaluate("\(l)", train: set(l, 0), val: set(l, 1), test: set(l, 2)) }
      lock.withLock { outcome = .success(results) }
    }
  }

  /// The probes' results once fitted.
  var finished: Result<[LinearProbe.Result], Error>? { lock.withLock { outcome } }
}
