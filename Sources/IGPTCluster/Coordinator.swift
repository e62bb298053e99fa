import CZeroMQ
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe
import IGPTTraining

/// The event loop of a cluster run: one ROUTER socket, the I/O around the parts that decide.
///
/// Each step is a *phase* at parameter version = completed steps (`TrainingPhase`): the
/// validation microbatches due at that step and the gradient blocks of the next. The
/// `Scheduler` says who computes what, `Membership` who is in, the `ParameterServer` sums
/// the blocks in the step's tree whoever computed them and applies the update exactly as
/// `igpt train` does, the `ProbeJobRunner` runs probe jobs between training tasks, and the
/// `TrainingRun` says when to log, validate and checkpoint. What happens goes to
/// RUN/events.jsonl (`ClusterEvents`).
public final class Coordinator {
  public struct Options {
    public var bind: String
    public var log: (String) -> Void
    public var shouldStop: () -> Bool
    /// CURVE: the coordinator's secret key and the allow-list of client public keys.
    public var curve: (secret: CurveKey, allow: String)?
    /// Largest gradient block handed out (nil = as the workers allow; 1 = one microbatch per task).
    public var maxBlock: Int?
    /// Workers to wait for before the first task goes out (0: start with the first to join).
    public var waitForWorkers = 0
    /// Parameter-server shards to wait for (`igpt server`; 0: this process is the only one).
    public var shards = 0
    /// True once per SIGHUP: re-read the allow-list.
    public var reloadRequested: () -> Bool = { false }
    public init(bind: String, log: @escaping (String) -> Void, shouldStop: @escaping () -> Bool) {
      self.bind = bind
      self.log = log
      self.shouldStop = shouldStop
    }
  }

  public enum Outcome { case finished, stopped }

  public let training: TrainingRun
  let options: Options
  let config: RunConfig
  let socket: ZMQSocket
  let zap: ZAPHandler?
  public let runHash: UInt64
  public let endpoint: String
  /// What every worker must compute with (or, with policy any, whether one did not).
  public private(set) var numerics: RunNumerics
  let events: ClusterEvents
  let server: ParameterServer
  let probes: ProbeJobRunner
  var scheduler = Scheduler()
  var members: Membership
  var phase: TrainingPhase
  let valBatches: [Microbatch]
  let badInput: RateLimitedLog
  var trainingDone = false
  /// Bound beyond loopback without keys (shown by `igpt status`).
  public var insecure = false
  var clock = StepClock()
  /// The longest a task took so far (tasks held 5 times longer are handed out again).
  var slowestTask = 0.0
  var tokensPerSecond = 0.0
  /// Whether `waitForWorkers` were there once (from then on, work goes out to whoever is in).
  var enoughJoined = false
  /// The parameter-server shards (nil: this process sums, updates and serves parameters).
  var shards: ShardRoster?
  /// The state parts each shard sent back for the pull under way, and the version last pulled.
  var pulledParts: [Int: Set<Int>] = [:]
  var pulledVersion: UInt64?
  /// Set when a shard lost its slice mid-run (it said hello again after updates this
  /// coordinator has no copy of): `checkShards` stops the run with it.
  var shardStateLost: String?
  /// Worker hellos that came before every shard was restored (answered then).
  var waitingHellos: [(Message, Data, String)] = []
  var lastHeartbeat = Date.distantPast
  var lastWaitingNote = Date.distantPast
  /// How long the loops went without listening (a stall of this process is not its peers' silence).
  var listening = ListeningClock()

  public init(run: TrainingRun, options: Options) throws {
    self.training = run
    self.options = options
    let trainer = training.trainer
    config = trainer.config
    runHash = RunIdentity.runHash(config: config, model: trainer.model.config, palette: trainer.store.manifest.palette,
                                     tokenizer: trainer.store.manifest.tokenKind)
    valBatches = try trainer.validationMicrobatches()
    numerics = training.numerics
    events = try ClusterEvents(runDir: training.runDir, log: options.log)
    server = ParameterServer(trainer: trainer, codec: config.cluster.codec)
    probes = try ProbeJobRunner(runDir: training.runDir, share: config.probes.share, tensorboard: training.metrics.tensorboard, events: events)
    members = Membership(config: config)
    badInput = RateLimitedLog(log: options.log)
    phase = try TrainingPhase(run: training, validation: valBatches, firstId: 1, workers: 1, maxBlock: options.maxBlock)
    if options.shards > 0 { shards = ShardRoster(plan: try ShardPlan(total: trainer.model.parameterCount, shards: options.shards)) }
    // The ZAP handler must be bound before the CURVE server socket, or libzmq admits everyone.
    zap = try options.curve.map { try ZAPHandler(allowPath: $0.allow, log: options.log) }
    socket = try ZMQSocket(.router)
    try options.curve?.secret.serve(on: socket)
    try socket.setHighWaterMarks(64)
    let p = trainer.model.parameterCount
    // The largest legitimate message is a lossless gradient (or a part of a shard's state, no
    // larger): 4 bytes per value plus LZ4's bound.
    try socket.setMaxMessageSize(4 * p + 4 * p / 255 + 64 * (p / GradientCodec.chunkElements + 1) + (1 << 20))
    try socket.bind(options.bind)
    endpoint = socket.lastEndpoint
  }

  public var trainer: Trainer { training.trainer }
  var version: UInt64 { UInt64(trainer.step) }
  var interval: Double { config.cluster.heartbeatInterval }

  // MARK: - Event loop

  /// Runs until the last step's checkpoint is written (then tells the workers and returns
  /// `.finished`) or until `shouldStop` (checkpoint of the current step, `.stopped`).
  public func run() throws -> Outcome {
    try beginPhase()
    try awaitShards()
    while true {
      if options.shouldStop() {
        if training.checkpointDue(afterStep: trainer.step, stopping: true) { try checkpointNow() }
        return .stopped
      }
      if !trainingDone, phaseComplete, try finishPhase() {
        trainingDone = true
        if !probes.isIdle { events.say("training done; finishing the probe jobs") }
      }
      try advanceProbes()
      if trainingDone && probes.isIdle {
        finishRun()
        return .finished
      }
      let now = Date()
      enoughJoined = enoughJoined || eligibleWorkers >= options.waitForWorkers
      if enoughJoined {
        try replanIfUntouched()
        dispatch(scheduler.assign(now: now, probes: probes.mayAssign(trainingDone: trainingDone)))
      }
      ZMQSocket.poll(zap.map { [socket, $0.socket] } ?? [socket], timeout: 0.05)
      zap?.serve()
      var n = 0
      while n < 256, let m = socket.receive() {
        handle(m)
        n += 1
      }
      reloadAllowListIfAsked()
      heartbeatIfDue(now: now)
      excuseOwnStall(now: Date())
      expire(now: Date())
      try checkShards(now: Date())
      noteWaitingIfDue(now: now)
    }
  }

  /// Every 10 s while there is no one (or fewer than --wait-for) to work: who is missing.
  func noteWaitingIfDue(now: Date) {
    guard members.count == 0 || !enoughJoined, now.timeIntervalSince(lastWaitingNote) >= 10 else { return }
    lastWaitingNote = now
    let have = members.count == 0 ? "none connected" : "\(eligibleWorkers) of \(options.waitForWorkers) (--wait-for) ready"
    events.say("waiting for workers at step \(trainer.step): \(have) (start one with: igpt worker --connect \(endpoint))")
  }

  /// Before judging silence: the time this process went without listening (stopped, starved,
  /// a long checkpoint write) is excused to every worker and shard, whose heartbeats of that
  /// time may still be queued behind the loop's 256-message turn or not yet sent.
  func excuseOwnStall(now: Date) {
    let away = listening.away(now: now, allowance: interval)
    guard away > 0 else { return }
    members.excuse(away, now: now)
    shards?.excuse(away, now: now)
    if away >= interval * Double(config.cluster.heartbeatMisses) {
      events.say(String(format: "this coordinator did not listen for %.1f s (stopped or starved?): not counted as its peers' silence", away + interval))
    }
  }

  /// Heartbeats to every worker and shard, once per interval.
  func heartbeatIfDue(now: Date) {
    guard now.timeIntervalSince(lastHeartbeat) >= interval else { return }
    lastHeartbeat = now
    for id in members.ids + (shards?.members.compactMap { $0?.id } ?? []) { send(Message(.heartbeat, runHash: runHash, version: version), to: id) }
  }

  /// Tells every worker and shard the run is over, answering stragglers for a moment.
  func finishRun() {
    for id in members.ids { if let w = members[id] { events.record("finished", ["worker": w.name, "microbatches": w.microbatchesDone]) } }
    let done = Message(.done, runHash: runHash, version: version, meta: Wire.Done(step: trainer.step))
    for id in members.ids + (shards?.members.compactMap { $0?.id } ?? []) { send(done, to: id) }
    let until = Date().addingTimeInterval(min(2, interval * 2))
    while Date() < until {
      ZMQSocket.poll(zap.map { [socket, $0.socket] } ?? [socket], timeout: 0.05)
      zap?.serve()
      if let m = socket.receive(), m.frames.count == 2 { send(done, to: m.frames[0]) }
    }
  }

  func reloadAllowListIfAsked() {
    guard let zap, options.reloadRequested() else { return }
    if let error = zap.reload() {
      events.say("allow-list not reloaded, keeping the old one: \(error)")
    } else {
      events.say("allow-list reloaded from \(zap.allowPath): \(zap.allowed.count) keys")
    }
  }

  // MARK: - Phases

  var phaseComplete: Bool { scheduler.allDone(.training) && (!phase.training || stepGradientIn) && phase.validationComplete }

  /// The step's gradient is summed: here, or (with shards) by every shard, its losses here.
  var stepGradientIn: Bool { shards.map { $0.norm(step: version) != nil && server.lossesComplete } ?? server.isComplete }

  /// Writes the checkpoint due now (the shards' state pulled first).
  func checkpointNow() throws {
    try pullShards()
    events.say(try training.checkpoint())
  }

  var eligibleWorkers: Int { members.ids.filter { members[$0]!.numericsChecked }.count }

  /// Queues the work at the current parameter version, gradient blocks sized for the workers
  /// that can take work now.
  func beginPhase() throws {
    let s = trainer.step
    try planPhase()
    server.beginStep()
    clock = StepClock()
    if config.probes.every > 0 && s > training.startStep && s % config.probes.every == 0 {
      let job = probes.add(ProbeJob.Request(config.probes), origin: "schedule", step: s)
      events.record("probe_queued", ["job": job.id, "step": s, "origin": "schedule"], line: "probe \(job.id) scheduled at step \(s)")
    }
  }

  /// (Re)builds the phase's tasks for the workers there now.
  func planPhase() throws {
    phase = try TrainingPhase(run: training, validation: valBatches, firstId: phase.nextId, workers: eligibleWorkers, maxBlock: options.maxBlock)
    scheduler.replace(.training, with: phase.ids)
  }

  /// Before any of the phase's work went out, blocks planned for other workers than are there
  /// now are planned again (the first phase is planned before anyone joined).
  func replanIfUntouched() throws {
    guard phase.training, phase.workers != max(1, eligibleWorkers), !scheduler.anySent(.training) else { return }
    try planPhase()
  }

  /// All work of the phase is in: record validation, checkpoint if due, then update (true when the run is over).
  func finishPhase() throws -> Bool {
    if phase.validating { events.say(training.recordValidation(trainer.finishValidation(losses: phase.validationLosses.map { $0 ?? .nan }, of: valBatches))) }
    if training.checkpointDue(afterStep: trainer.step) { try checkpointNow() }
    if training.isFinished { return true }
    let r = shards == nil ? server.applyUpdate() : try shardedUpdate()
    let split = clock.split(coordinatorSeconds: server.transferSeconds + clock.sendSeconds)
    tokensPerSecond = Double(trainer.tokensPerStep) / max(split.total, 1e-9)
    events.record("step", ["step": trainer.step, "workers": members.count, "gradients_in": clock.gradients, "wire_bytes_in": clock.bytesIn,
                           "wire_bytes_out": clock.bytesOut, "step_s": split.total, "compute_s": split.compute,
                           "transfer_s": split.transfer, "wait_s": split.wait, "partial_sums_peak": server.reduction.peakBuffers])
    if training.logDue(afterStep: trainer.step) {
      let extra: [String: Any] = ["workers": members.count, "wire_bytes_in": clock.bytesIn, "wire_bytes_out": clock.bytesOut,
                                  "gradients_in": clock.gradients, "step_s": split.total, "worker_compute_s": clock.computeSum]
      events.say(training.recordStep(r, tokensPerSecond: tokensPerSecond, extra: extra,
                                note: "  \(members.count) workers"))
    }
    try beginPhase()
    return false
  }

  func advanceProbes() throws {
    if shards != nil && probes.current == nil && probes.queue.next != nil { try pullShards() }  // the job's snapshot
    if let started = probes.advance(step: trainer.step, model: trainer.model, store: trainer.store, firstTaskId: 1) {
      scheduler.replace(.probe, with: started.taskIds)
    } else if probes.current == nil && scheduler.pending(.probe) > 0 {
      scheduler.replace(.probe, with: [])  // the job ended: its tasks are obsolete
    }
  }

  /// A contribution with other numerics: the run's bytes are no longer reproducible (said
  /// once, and kept in every checkpoint from now on).
  func markNotReproducible(because why: String) {
    guard numerics.reproducible else { return }
    numerics.reproducible = false
    trainer.numerics = numerics
    events.record("not_reproducible", ["why": why], line: "run marked NOT reproducible (cluster.numerics: any): \(why)")
  }
}
