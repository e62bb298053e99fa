import Foundation

/// What `igpt status` shows: the run's progress, each worker, and the coordinator's task queue.
public struct ClusterStatus: Codable, Sendable {
  public struct Worker: Codable, Sendable {
    public var name: String
    public var address: String
    public var host: String
    public var pid: Int32
    public var secondsSinceHeartbeat: Double
    public var microbatchesDone: Int
    /// Bytes this worker sent to the coordinator (results) and received from it (parameters, tasks).
    public var bytesSent: Int
    public var bytesReceived: Int
    public var busy: Bool
  }

  public var runDir: String
  public var step: Int
  public var steps: Int
  public var loss: Double?
  public var valLoss: Double?
  public var tokensPerSecond: Double
  public var elapsedSeconds: Double
  public var codec: String
  public var workers: [Worker]
  /// Listening beyond loopback without keys.
  public var insecure: Bool
  /// CURVE-encrypted, with an allow-list.
  public var encrypted: Bool
  /// Scheduled and queued tasks, in the order they will run ("checkpoint at step 500", ...).
  public var queuedTasks: [String]
  public var microbatchesPending: Int
  public var microbatchesOutstanding: Int
  public var droppedMessages: Int
  /// The run's numerics (one line), and whether every contribution so far computed with it.
  public var numerics: String? = nil
  public var reproducible: Bool? = nil

  /// The human-readable table.
  public var text: String {
    var lines = [String(format: "run %@: step %d/%d  loss %@  val %@  %.0f tokens/s  up %.0f s  codec %@", runDir, step, steps,
                        loss.map { String(format: "%.4f", $0) } ?? "-", valLoss.map { String(format: "%.4f", $0) } ?? "-",
                        tokensPerSecond, elapsedSeconds, codec)]
    lines.append(encrypted ? "security: CURVE encryption, allow-listed keys only" : "security: none (plaintext)")
    if insecure { lines.append("INSECURE: unencrypted, and any peer that reaches the port can join") }
    if let numerics { lines.append("numerics: \(numerics)") }
    if reproducible == false { lines.append("NOT REPRODUCIBLE: workers with other numerics contributed (cluster.numerics: any)") }
    lines.append("microbatches: \(microbatchesPending) queued, \(microbatchesOutstanding) out; dropped messages: \(droppedMessages)")
    if workers.isEmpty { lines.append("workers: none connected") }
    for w in workers {
      lines.append(String(format: "  worker %@ (%@, pid %d on %@): heartbeat %.1f s ago, %d microbatches, sent %@, received %@%@",
                          w.name, w.address, w.pid, w.host, w.secondsSinceHeartbeat, w.microbatchesDone,
                          Self.bytes(w.bytesSent), Self.bytes(w.bytesReceived), w.busy ? ", busy" : ""))
    }
    lines.append("tasks: " + (queuedTasks.isEmpty ? "none" : queuedTasks.joined(separator: "; ")))
    return lines.joined(separator: "\n")
  }

  static func bytes(_ n: Int) -> String {
    n >= 1 << 20 ? String(format: "%.1f MB", Double(n) / 1e6) : String(format: "%.1f kB", Double(n) / 1e3)
  }
}

extension Coordinator {
  /// What `igpt status` shows now.
  func status() -> ClusterStatus {
    let now = Date()
    let s = trainer.step
    var queued: [String] = []
    if phase.validating && !phase.validationComplete { queued.append("validation at step \(s)") }
    queued.append("checkpoint at step \(training.nextCheckpointStep)")
    for job in probes.queue.jobs where job.state == .queued || job.state == .running { queued.append(job.summary) }
    if config.train.valEvery > 0 { queued.append("validation at step \(min(config.train.steps, (s / config.train.valEvery + 1) * config.train.valEvery))") }
    let slots = scheduler.slots
    return ClusterStatus(
      runDir: training.runDir, step: s, steps: training.end, loss: trainer.lastLoss, valLoss: trainer.lastValLoss,
      tokensPerSecond: tokensPerSecond, elapsedSeconds: now.timeIntervalSince(training.started), codec: config.cluster.codec.rawValue,
      workers: members.ids.compactMap { members[$0] }.sorted { $0.name < $1.name }.map {
        ClusterStatus.Worker(name: $0.name, address: $0.address, host: $0.host, pid: $0.pid,
                             secondsSinceHeartbeat: now.timeIntervalSince($0.lastHeard), microbatchesDone: $0.microbatchesDone,
                             bytesSent: $0.bytesSent, bytesReceived: $0.bytesReceived, busy: !(slots[$0.id]?.held.isEmpty ?? true))
      },
      insecure: insecure, encrypted: zap != nil, queuedTasks: queued,
      microbatchesPending: scheduler.pending(.training) - slots.values.reduce(0) { $0 + $1.held.count },
      microbatchesOutstanding: slots.values.reduce(0) { $0 + $1.held.count }, droppedMessages: badInput.total,
      numerics: numerics.fingerprint.summary + " (\(numerics.policy.rawValue))", reproducible: numerics.reproducible)
  }
}
