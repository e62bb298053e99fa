import Foundation
import IGPTData
import IGPTProbe
import IGPTTraining

/// A linear-probe evaluation queued on a coordinator: which layers, on how many images, and
/// (once done) the accuracies. Jobs are kept in RUN/probe-jobs.json, so queued and running jobs
/// survive a coordinator restart (a running job starts over at the step it resumes at).
public struct ProbeJob: Codable, Sendable {
  public enum State: String, Codable, Sendable { case queued, running, done, failed }

  public struct Request: Codable, Sendable {
    public var layers: String
    public var trainImages: Int
    public var evalImages: Int
    /// Low-data mode: this many train images per class (seeded), from the first trainImages.
    public var labelsPerClass: Int?
    /// Also probe the concatenation of this many layers around the best one (0 or 1 = off).
    public var concat = 0
    /// Also fit the raw-pixel baseline.
    public var rawPixels = false
    /// BERT models: average each image's features over this many random masks.
    public var masks = 1
    /// Seed of the low-data selection and the BERT masks: the same as `igpt probe run --seed`.
    public var seed: UInt64 = 0
    /// L-BFGS iterations per L2 strength.
    public var maxIterations = LinearProbe.defaultMaxIterations

    public init(layers: String, trainImages: Int, evalImages: Int, labelsPerClass: Int? = nil, concat: Int = 0,
                rawPixels: Bool = false, masks: Int = 1, seed: UInt64 = 0, maxIterations: Int = LinearProbe.defaultMaxIterations) {
      self.seed = seed
      self.maxIterations = maxIterations
      self.layers = layers
      self.trainImages = trainImages
      self.evalImages = evalImages
      self.labelsPerClass = labelsPerClass
      self.concat = concat
      self.rawPixels = rawPixels
      self.masks = masks
    }

    /// The run's probes settings with a submission's overrides.
    public init(_ p: RunConfig.Probes, overriddenBy s: Wire.ProbeSubmit? = nil) {
      self.init(layers: s?.layers ?? p.layers, trainImages: s?.trainImages ?? p.trainImages,
                evalImages: s?.evalImages ?? p.evalImages, labelsPerClass: s?.labelsPerClass ?? p.labelsPerClass,
                concat: s?.concat ?? p.concat, rawPixels: s?.rawPixels ?? p.rawPixels, masks: s?.masks ?? p.masks,
                seed: s?.seed ?? p.seed, maxIterations: p.maxIterations)
    }

    /// Jobs saved before the newer options existed read with their defaults.
    public init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      layers = try c.decode(String.self, forKey: .layers)
      trainImages = try c.decode(Int.self, forKey: .trainImages)
      evalImages = try c.decode(Int.self, forKey: .evalImages)
      labelsPerClass = try c.decodeIfPresent(Int.self, forKey: .labelsPerClass)
      concat = try c.decodeIfPresent(Int.self, forKey: .concat) ?? 0
      rawPixels = try c.decodeIfPresent(Bool.self, forKey: .rawPixels) ?? false
      masks = try c.decodeIfPresent(Int.self, forKey: .masks) ?? 1
      seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
      maxIterations = try c.decodeIfPresent(Int.self, forKey: .maxIterations) ?? LinearProbe.defaultMaxIterations
    }

    /// Why this request cannot run on a model of `modelLayers` layers, or nil.
    public func problem(modelLayers: Int) -> String? {
      do { _ = try LinearProbe.parseLayers(layers, modelLayers: modelLayers) } catch { return "\(error)" }
      if trainImages < 10 || evalImages < 10 { return "probes need at least 10 train and 10 eval images" }
      if let n = labelsPerClass, n < 1 { return "labels per class must be at least 1" }
      if concat < 0 || concat > modelLayers + 1 { return "concat must be in 0...\(modelLayers + 1)" }
      if maxIterations < 1 { return "max iterations must be at least 1" }
      if masks < 1 || masks > 16 { return "masks must be in 1...16 (the coordinator keeps each mask's features until the job ends)" }
      return nil
    }

    /// The options beyond layers and images, for summaries ("" when none).
    var extras: String {
      var parts: [String] = []
      if let n = labelsPerClass { parts.append("\(n) labels per class") }
      if concat > 1 { parts.append("concat \(concat)") }
      if rawPixels { parts.append("raw pixels") }
      if masks > 1 { parts.append("\(masks) masks") }
      if seed != 0 { parts.append("seed \(seed)") }
      return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
    }
  }

  public var id: Int
  public var state: State
  public var request: Request
  /// "schedule" or "submitted".
  public var origin: String
  public var submittedAtStep: Int
  /// The step whose parameters the job uses (set when it starts).
  public var step: Int?
  public var results: [LinearProbe.Result]
  public var bestLayer: String?
  public var error: String?
  public var featureSeconds: Double?

  /// One line for `igpt probe list` and `igpt status`.
  public var summary: String {
    var s = "probe \(id) [\(state.rawValue)] layers \(request.layers), \(request.trainImages) train images\(request.extras) (\(origin) at step \(submittedAtStep))"
    if let step { s += ", parameters of step \(step)" }
    if let best = results.first(where: { $0.features == bestLayer }) {
      s += String(format: ": best layer %@, test accuracy %.4f", best.features, best.testAccuracy)
    }
    if let error { s += ": \(error)" }
    return s
  }
}

/// The coordinator's probe jobs, persisted atomically on every change.
public final class ProbeQueue {
  public private(set) var jobs: [ProbeJob] = []
  let path: String
  let log: (String) -> Void

  /// Loads RUN/probe-jobs.json if present; jobs that were running go back to the queue.
  /// A list that cannot be saved later is said through `log` (the jobs go on in memory).
  public init(runDir: String, log: @escaping (String) -> Void) {
    path = (runDir as NSString).appendingPathComponent("probe-jobs.json")
    self.log = log
    if let data = FileManager.default.contents(atPath: path) {
      do {
        jobs = try JSONDecoder().decode([ProbeJob].self, from: data)
        for i in jobs.indices where jobs[i].state == .running {
          jobs[i].state = .queued
          jobs[i].step = nil
        }
        let waiting = jobs.filter { $0.state == .queued }.count
        if waiting > 0 { log("probe jobs: \(waiting) queued from \(path)") }
      } catch {
        log("warning: \(path) unreadable (\(error)); starting with no probe jobs")
      }
    }
  }

  @discardableResult
  public func add(_ request: ProbeJob.Request, origin: String, step: Int) -> ProbeJob {
    let job = ProbeJob(id: (jobs.map(\.id).max() ?? 0) + 1, state: .queued, request: request, origin: origin,
                       submittedAtStep: step, step: nil, results: [], bestLayer: nil, error: nil, featureSeconds: nil)
    jobs.append(job)
    saveOrWarn()
    return job
  }

  public func update(_ id: Int, _ change: (inout ProbeJob) -> Void) {
    guard let i = jobs.firstIndex(where: { $0.id == id }) else { return }
    change(&jobs[i])
    saveOrWarn()
  }

  public var next: ProbeJob? { jobs.first { $0.state == .queued } }

  /// Writes the list durably: temp file in the same directory, fsync, rename, fsync the
  /// directory, so a crash leaves the old or the new list, and the rename itself survives one.
  func save() throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try e.encode(jobs)
    let tmp = path + ".tmp"
    try AtomicDirectory.writeDurably(data, path: tmp)
    guard rename(tmp, path) == 0 else {
      let why = String(cString: strerror(errno))
      unlink(tmp)
      throw DataError.file(path, "cannot be replaced (\(why))")
    }
    AtomicDirectory.syncDirectory((path as NSString).deletingLastPathComponent)
  }

  private func saveOrWarn() {
    do { try save() } catch {
      log("warning: probe jobs not saved (\(error)): queued jobs will not survive a coordinator restart")
    }
  }
}
