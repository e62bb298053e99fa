import Foundation
import IGPTData
import IGPTModel
import IGPTProbe
import IGPTTraining
import IGPTVQVAE

/// `igpt train`'s scheduled probes (`probes.every`): at every N-th step the config's probe job
/// runs in this process on the parameters of that step, between training steps, and is recorded
/// as a coordinator records its jobs (RUN/probes.jsonl, TensorBoard, the same results to the
/// bit: the same images, masks and solver).
///
/// A run resumed at step s first drops the records of steps after s (they are probed again) and
/// probes s itself when it is due and not yet recorded (the process stopped during that probe).
public final class LocalProbes {
  public let request: ProbeJob.Request
  let every: Int
  private let log: MetricsLog
  private let tensorboard: TensorBoardLog?
  /// Steps already probed (after the cut back).
  private var probed: Set<Int>
  private var nextId: Int

  public init(config: RunConfig, runDir: String, resumingAt step: Int, tensorboard: TensorBoardLog?) throws {
    request = ProbeJob.Request(config.probes)
    every = config.probes.every
    let path = (runDir as NSString).appendingPathComponent("probes.jsonl")
    log = try MetricsLog(path: path, resumingAt: step)
    self.tensorboard = tensorboard
    let lines = (FileManager.default.contents(atPath: path) ?? Data()).split(separator: UInt8(ascii: "\n"))
    let jobs = lines.compactMap { try? JSONDecoder().decode(ProbeJob.self, from: Data($0)) }
    probed = Set(jobs.compactMap(\.step))
    nextId = (jobs.map(\.id).max() ?? 0) + 1
  }

  /// Whether the parameters after step s are probed (never step 0, before any training).
  public func due(afterStep s: Int) -> Bool { every > 0 && s > 0 && s % every == 0 && !probed.contains(s) }

  /// Why the config's probe cannot run on this model, or nil.
  public func problem(modelLayers: Int) -> String? { every > 0 ? request.problem(modelLayers: modelLayers) : nil }

  /// Probes `model` (the parameters of `step`), records the job and returns its summary line.
  /// `progress(done, total)` follows the feature passes.
  public func run(step: Int, model: IGPT, store: TokenStore, progress: (Int, Int) -> Void = { _, _ in }) throws -> String {
    let started = Date()
    let layers = try LinearProbe.parseLayers(request.layers, modelLayers: model.config.layers)
    var extractor = FeatureExtractor(model: model)
    extractor.batch = ProbeRun.chunk
    extractor.masks = model.config.objective == .bert ? max(1, request.masks) : 1
    extractor.seed = request.seed
    extractor.deepestLayer = ProbeSweep.deepestLayer(layers: layers, modelLayers: model.config.layers, concat: request.concat)
    let chosen = try ProbeRun.images(request, store: store)
    let total = chosen.reduce(0) { $0 + $1.1.count }
    var done = 0
    let features = try chosen.map { split, idx in
      defer { done += idx.count }
      return try extractor.extract(split, indices: idx) { n, _ in progress(done + n, total) }
    }
    let featureSeconds = Date().timeIntervalSince(started)
    var pixels: ProbeSweep.Splits?
    if request.rawPixels {
      let decoder = try VQVAETokenDecoder.forStore(store)
      let sets = try chosen.map { try FeatureExtractor.rawPixels($0.0, indices: $0.1, decoder: decoder) }
      pixels = ProbeSweep.Splits(train: sets[0], val: sets[1], test: sets[2], input: FeatureExtractor.pixelsInput(store))
    }
    let results = ProbeSweep.run(
      layers: layers, modelLayers: model.config.layers,
      layer: { ProbeSweep.Splits(train: features[0][$0], val: features[1][$0], test: features[2][$0]) },
      concat: request.concat, pixels: pixels, maxIterations: request.maxIterations)
    let job = ProbeJob(id: nextId, state: .done, request: request, origin: "schedule", submittedAtStep: step, step: step,
                       results: results, bestLayer: ProbeSweep.bestLayer(results)?.features, error: nil, featureSeconds: featureSeconds)
    job.record(in: log, tensorboard: tensorboard)
    nextId += 1
    probed.insert(step)
    return job.summary + String(format: " (%.0f s)", Date().timeIntervalSince(started))
  }
}
