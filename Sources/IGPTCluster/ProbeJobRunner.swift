import Foundation
import IGPTData
import IGPTModel
import IGPTProbe
import IGPTTraining

/// The probe jobs of a cluster run: the persistent queue, the job in progress (its feature
/// tasks go through the scheduler beside the training tasks, within `probes.share` of the
/// workers' compute time), the fit once its features are in, and the results recorded in
/// RUN/probes.jsonl, TensorBoard and the job list.
final class ProbeJobRunner {
  let queue: ProbeQueue
  private let results: MetricsLog
  private let tensorboard: TensorBoardLog?
  private let events: ClusterEvents
  let share: Double
  private(set) var current: ProbeRun?

  init(runDir: String, share: Double, tensorboard: TensorBoardLog?, events: ClusterEvents) throws {
    queue = ProbeQueue(runDir: runDir, log: events.say)
    results = try MetricsLog(path: (runDir as NSString).appendingPathComponent("probes.jsonl"))
    self.share = share
    self.tensorboard = tensorboard
    self.events = events
  }

  /// No job running and none queued.
  var isIdle: Bool { current == nil && queue.next == nil }

  /// Whether probe tasks may go out now: within the share of compute time (all of it once
  /// training is done), and not while the probes are being fitted.
  func mayAssign(trainingDone: Bool) -> Bool {
    guard let run = current, !run.evaluating else { return false }
    return trainingDone || run.probeSeconds <= share * (run.probeSeconds + run.trainingSeconds)
  }

  /// Compute seconds a worker spent on training while a job runs (for the share).
  func noteTraining(seconds: Double) { current?.trainingSeconds += min(seconds, 3600) }

  /// Stores a feature result of the current job; false when it is not one (stale).
  func store(version: UInt64, task id: UInt64, payload: Data, seconds: Double) throws -> Bool {
    guard let run = current, version == run.version, run.task(id) != nil else { return false }
    try run.store(id, payload: payload)
    run.probeSeconds += min(seconds, 3600)
    return true
  }

  /// Queues a job from the config's schedule or an operator.
  @discardableResult
  func add(_ request: ProbeJob.Request, origin: String, step: Int) -> ProbeJob { queue.add(request, origin: origin, step: step) }

  /// Starts the next queued job on the parameters of `step` (returns it, to schedule its
  /// tasks), fits a job whose features are all in, and records a fitted one.
  func advance(step: Int, model: IGPT, store: TokenStore, firstTaskId: UInt64) -> ProbeRun? {
    var started: ProbeRun?
    if current == nil, let job = queue.next { started = start(job, step: step, model: model, store: store, firstTaskId: firstTaskId) }
    guard let run = current else { return started }
    if run.allFeaturesIn && !run.evaluating { run.evaluate() }
    if let outcome = run.finished {
      current = nil
      finish(run, outcome)
    }
    return started
  }

  private func start(_ job: ProbeJob, step: Int, model: IGPT, store: TokenStore, firstTaskId: UInt64) -> ProbeRun? {
    do {
      let run = try ProbeRun(job: job, step: step, model: model, store: store, firstTaskId: firstTaskId + (UInt64(job.id) << 32))
      current = run
      queue.update(job.id) {
        $0.state = .running
        $0.step = step
      }
      events.record("probe_started", ["job": job.id, "step": step, "tasks": run.tasks.count, "layers": job.request.layers],
                    line: "probe \(job.id) started on the parameters of step \(step): \(run.tasks.count) feature microbatches, layers \(job.request.layers)")
      return run
    } catch {
      queue.update(job.id) {
        $0.state = .failed
        $0.error = "\(error)"
      }
      events.record("probe_failed", ["job": job.id, "error": "\(error)"], line: "probe \(job.id) failed: \(error)")
      return nil
    }
  }

  private func finish(_ run: ProbeRun, _ outcome: Result<[LinearProbe.Result], Error>) {
    switch outcome {
    case .success(let fitted):
      let best = ProbeSweep.bestLayer(fitted)
      queue.update(run.jobId) {
        $0.state = .done
        $0.results = fitted
        $0.bestLayer = best?.features
        $0.featureSeconds = run.featureSeconds
      }
      let job = queue.jobs.first { $0.id == run.jobId }!
      job.record(in: results, tensorboard: tensorboard)
      events.record("probe_done", ["job": run.jobId, "step": run.step, "best_layer": best?.features ?? "", "test_accuracy": best?.testAccuracy ?? 0,
                                   "feature_s": run.featureSeconds], line: job.summary)
    case .failure(let error):
      queue.update(run.jobId) {
        $0.state = .failed
        $0.error = "\(error)"
      }
      events.record("probe_failed", ["job": run.jobId, "error": "\(error)"], line: "probe \(run.jobId) failed: \(error)")
    }
  }
}
