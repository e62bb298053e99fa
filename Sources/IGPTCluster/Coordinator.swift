import CZeroMQ
import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import IGPTProbe
import IGPTTraining

/// The parameter server and scheduler of a cluster run.
///
/// It owns the `Trainer` (parameters, AdamW state, data order, schedule, checkpoints) and runs a
/// single-threaded event loop over one ROUTER socket. Each step is a *phase* at parameter version
/// = completed steps: the validation microbatches due at that step and the gradient microbatches
/// of the next step are handed to ready workers with their tokens; gradients are summed in
/// microbatch order whoever computed them (design.md, principle 2); then the update is applied
/// exactly as `igpt train` applies it.
public final class Coordinator {
  public struct Options {
    public var runDir: String
    public var bind: String
    /// Last step of this run.
    public var end: Int
    public var log: (String) -> Void
    public var shouldStop: () -> Bool
    /// CURVE: the coordinator's secret key and the allow-list of client public keys.
    public var curve: (secret: CurveKey, allow: String)?
    /// True once per SIGHUP: re-read the allow-list.
    public var reloadRequested: () -> Bool = { false }
    /// The run's numerics (RunNumerics.establish); nil = this process's at the run's threads.
    public var numerics: RunNumerics?
    public init(runDir: String, bind: String, end: Int, log: @escaping (String) -> Void, shouldStop: @escaping () -> Bool) {
      self.runDir = runDir
      self.bind = bind
      self.end = end
      self.log = log
      self.shouldStop = shouldStop
    }
  }

  public enum Outcome { case finished, stopped }

  /// One microbatch of the current phase.
  struct PhaseTask {
    var meta: Meta.Task
    var body: Data
    var sentAt: Date?
    var requeued = false
    var done = false
  }

  public let trainer: Trainer
  let options: Options
  let config: RunConfig
  let socket: ZMQSocket
  let zap: ZAPHandler?
  public let runHash: UInt64
  public let endpoint: String
  /// What every worker must compute with (or, with policy any, whether one did not).
  public private(set) var numerics: RunNumerics
  let metrics: MetricsLog
  /// Probe jobs (queued, running, done) and the one in progress.
  public let probes: ProbeQueue
  var probeRun: ProbeRun?
  let probeLog: MetricsLog
  var trainingDone = false
  let badInput: RateLimitedLog
  var workers: [Data: WorkerRecord] = [:]

  // The current phase.
  var tasks: [PhaseTask] = []
  var firstId: UInt64 = 1
  var queue: [Int] = []
  var accumulated = 0
  var gradientCount = 0
  var outOfOrder: [Int: (gradient: [Float], loss: Double)] = [:]
  var lossSum = 0.0
  var validating = false
  var valLosses: [Double?] = []
  let valBatches: [Microbatch]
  var paramsPayload: Data?
  let scratch: UnsafeMutablePointer<Float>

  // Bookkeeping.
  let startStep: Int
  var lastCheckpointStep: Int
  var slowestTask = 0.0
  var lastHeartbeat = Date.distantPast
  var lastWaitingNote = Date.distantPast
  let started = Date()
  var stepStarted = Date()
  var tokensPerSecond = 0.0
  var bytesIn = 0
  var bytesOut = 0
  var staleResults = 0
  /// Bound beyond loopback without keys (shown by `igpt status`).
  public var insecure = false
  /// Seconds workers spent computing this step's microbatches (their own clocks).
  var computeSeconds = 0.0

  public init(trainer: Trainer, options: Options) throws {
    self.trainer = trainer
    self.options = options
    config = trainer.config
    startStep = trainer.step
    lastCheckpointStep = trainer.step
    runHash = Self.runHash(config: trainer.config, model: trainer.model.config, palette: trainer.store.manifest.palette)
    valBatches = try trainer.validationMicrobatches()
    numerics = try options.numerics ?? RunNumerics(
      fingerprint: NumericsFingerprint.measure(trainer.model.config, threads: RunNumerics.threads(config: trainer.config, recorded: nil)),
      policy: trainer.config.cluster.numerics)
    trainer.numerics = numerics
    metrics = try MetricsLog(path: (options.runDir as NSString).appendingPathComponent("metrics.jsonl"),
                             tensorboard: try TensorBoardLog(runDir: options.runDir, resumingAt: trainer.step))
    badInput = RateLimitedLog(log: options.log)
    probes = ProbeQueue(runDir: options.runDir, log: options.log)
    probeLog = try MetricsLog(path: (options.runDir as NSString).appendingPathComponent("probes.jsonl"))
    scratch = .allocate(capacity: trainer.model.parameterCount)
    // The ZAP handler must be bound before the CURVE server socket, or libzmq admits everyone.
    zap = try options.curve.map { try ZAPHandler(allowPath: $0.allow, log: options.log) }
    socket = try ZMQSocket(.router)
    if let curve = options.curve {
      try socket.set(ZMQ_CURVE_SERVER, 1)
      try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(curve.secret.z85.utf8))
      try socket.set(ZMQ_ZAP_DOMAIN, bytes: Array("igpt".utf8))
    }
    try socket.setHighWaterMarks(64)
    let p = trainer.model.parameterCount
    // The largest legitimate message is a lossless gradient: 4 bytes per value plus LZ4's bound.
    try socket.setMaxMessageSize(4 * p + 4 * p / 255 + 64 * (p / GradientCodec.chunkElements + 1) + (1 << 20))
    try socket.bind(options.bind)
    endpoint = socket.lastEndpoint
  }

  deinit { scratch.deallocate() }

  var version: UInt64 { UInt64(trainer.step) }
  var interval: Double { config.cluster.heartbeatInterval }
  var deadAfter: Double { interval * Double(config.cluster.heartbeatMisses) }

  // MARK: - Event loop

  /// Runs until the last step's checkpoint is written (then tells the workers and returns
  /// `.finished`) or until `shouldStop` (checkpoint of the current step, `.stopped`).
  public func run() throws -> Outcome {
    try beginPhase()
    while true {
      if options.shouldStop() {
        if trainer.step != lastCheckpointStep { try writeCheckpoint() }
        return .stopped
      }
      if !trainingDone, tasks.allSatisfy(\.done), try finishPhase() {
        trainingDone = true
        if probeRun != nil || probes.next != nil { options.log("training done; finishing the probe jobs") }
      }
      tickProbes()
      if trainingDone && probeRun == nil && probes.next == nil {
        finishRun()
        return .finished
      }
      let now = Date()
      assign(now: now)
      assignProbes(now: now)
      ZMQSocket.poll(zap.map { [socket, $0.socket] } ?? [socket], timeout: 0.05)
      zap?.serve()
      var n = 0
      while n < 256, let m = socket.receive() {
        handle(m)
        n += 1
      }
      if let zap, options.reloadRequested() {
        if let error = zap.reload() {
          options.log("allow-list not reloaded, keeping the old one: \(error)")
        } else {
          options.log("allow-list reloaded from \(zap.allowPath): \(zap.allowed.count) keys")
        }
      }
      if now.timeIntervalSince(lastHeartbeat) >= interval {
        lastHeartbeat = now
        for id in Array(workers.keys) { send(Message(.heartbeat, runHash: runHash, version: version), to: id) }
      }
      expire(now: Date())
      if workers.isEmpty && now.timeIntervalSince(lastWaitingNote) >= 10 {
        lastWaitingNote = now
        options.log("waiting for workers at step \(trainer.step): none connected (start one with: igpt worker --connect \(endpoint))")
      }
    }
  }

  /// Tells every worker the run is over, answering stragglers for a moment.
  func finishRun() {
    let done = Message(.done, runHash: runHash, version: version, meta: Meta.Done(step: trainer.step))
    for id in Array(workers.keys) { send(done, to: id) }
    let until = Date().addingTimeInterval(min(2, interval * 2))
    while Date() < until {
      ZMQSocket.poll(zap.map { [socket, $0.socket] } ?? [socket], timeout: 0.05)
      zap?.serve()
      if let m = socket.receive(), m.frames.count == 2 { send(done, to: m.frames[0]) }
    }
  }

  // MARK: - Phases

  /// Queues the work at the current parameter version: validation if due, then the gradient
  /// microbatches of the next step.
  func beginPhase() throws {
    let s = trainer.step
    firstId += UInt64(tasks.count)
    tasks = []
    queue = []
    // task indices restart with each phase: what a worker held of the last one is obsolete
    // (a stale entry would keep it off that index for good, and could point past `tasks`)
    for id in workers.keys { workers[id]!.held = [] }
    accumulated = 0
    outOfOrder = [:]
    lossSum = 0
    paramsPayload = nil
    validating = s > startStep && !valBatches.isEmpty && trainer.validationDue(afterStep: s)
    if config.probes.every > 0 && s > startStep && s % config.probes.every == 0 {
      let p = config.probes
      let job = probes.add(ProbeJob.Request(p), origin: "schedule", step: s)
      options.log("probe \(job.id) scheduled at step \(s)")
    }
    if validating {
      valLosses = Array(repeating: nil, count: valBatches.count)
      for (i, mb) in valBatches.enumerated() { addTask(.validation, step: s, micro: i, scale: 1, mb) }
    }
    gradientCount = 0
    if s < options.end {
      let n = trainer.microbatchesPerStep
      let scale = Float(config.train.microbatch) / Float(config.train.batch)
      for micro in 0..<n { addTask(.gradient, step: s, micro: micro, scale: scale, try trainer.microbatch(step: s, micro: micro)) }
      gradientCount = n
      trainer.optimizer.zeroGradient()
    }
    queue = Array(tasks.indices)
    stepStarted = Date()
  }

  func addTask(_ kind: Meta.Task.Kind, step: Int, micro: Int, scale: Float, _ mb: Microbatch) {
    let meta = Meta.Task(id: firstId + UInt64(tasks.count), kind: kind, step: step, micro: micro, count: mb.count,
                         length: mb.length, scale: scale, hasMask: !mb.mask.isEmpty)
    tasks.append(PhaseTask(meta: meta, body: Meta.Task.body(tokens: mb.tokens, mask: mb.mask)))
  }

  /// All work of the phase is in: record validation, checkpoint if due, then update (true when the run is over).
  func finishPhase() throws -> Bool {
    let s = trainer.step
    if validating {
      let v = trainer.finishValidation(losses: valLosses.map { $0 ?? .nan }, of: valBatches)
      metrics.append(["step": s, "val_loss": v, "val_bits_per_token": v / log(2.0)])
      metrics.tensorboard?.samples(model: trainer.model, palette: trainer.store.palette, step: s)
      options.log(String(format: "step %d: val loss %.4f (%.3f bits/token)", s, v, v / log(2.0)))
    }
    if s != lastCheckpointStep && (s % config.checkpoint.every == 0 || s == options.end) { try writeCheckpoint() }
    if s >= options.end { return true }
    let r = trainer.applyUpdate(loss: lossSum)
    let dt = Date().timeIntervalSince(stepStarted)
    if dt > 0 { tokensPerSecond = Double(trainer.tokensPerStep) / dt }
    let step = trainer.step
    if step % config.train.logEvery == 0 || step == options.end {
      metrics.append([
        "step": step, "loss": r.loss, "bits_per_token": r.loss / log(2.0), "lr": r.learningRate, "grad_norm": r.gradNorm,
        "tokens_per_s": tokensPerSecond, "elapsed_s": Date().timeIntervalSince(started), "workers": workers.count,
        "wire_bytes_in": bytesIn, "wire_bytes_out": bytesOut, "step_s": dt, "worker_compute_s": computeSeconds,
      ].merging(numerics.reproducible ? [:] : ["reproducible": false]) { a, _ in a })
      options.log(String(format: "step %d/%d  loss %.4f  %.3f bits/token  %.0f tokens/s  %d workers", step, options.end, r.loss,
                         r.loss / log(2.0), tokensPerSecond, workers.count))
    }
    bytesIn = 0
    bytesOut = 0
    computeSeconds = 0
    try beginPhase()
    return false
  }

  func writeCheckpoint() throws {
    let path = try trainer.checkpoint(runDir: options.runDir)
    lastCheckpointStep = trainer.step
    options.log("checkpoint \(path)")
  }

  // MARK: - Scheduling

  /// Hands queued microbatches to workers with credit, one per worker per round, least recently
  /// served first.
  func assign(now: Date) {
    while true {
      while let idx = queue.first, tasks[idx].done { queue.removeFirst() }
      guard !queue.isEmpty else { return }
      let open = workers.values.filter { $0.credit > 0 && $0.numericsChecked }.sorted { $0.lastAssigned < $1.lastAssigned }
      var sent = false
      for w in open {
        // never hand a re-issued microbatch back to the worker still holding it (it is stuck there)
        guard let pos = queue.firstIndex(where: { !tasks[$0].done && !w.held.contains($0) }) else { continue }
        let idx = queue.remove(at: pos)
        if w.have != version {
          if paramsPayload == nil { paramsPayload = GradientCodec.encode(trainer.model.params, count: trainer.model.parameterCount) }
          guard send(Message(.params, runHash: runHash, version: version, body: paramsPayload!), to: w.id) else {
            queue.insert(idx, at: pos)
            continue
          }
          workers[w.id]?.have = version
        }
        guard send(Message(.task, runHash: runHash, version: version, meta: tasks[idx].meta, body: tasks[idx].body), to: w.id) else {
          queue.insert(idx, at: pos)
          continue
        }
        workers[w.id]?.held.append(idx)
        workers[w.id]?.credit -= 1
        workers[w.id]?.lastAssigned = now
        tasks[idx].sentAt = now
        tasks[idx].requeued = false  // out again: may be re-issued once more if this holder stalls too
        sent = true
      }
      if !sent { return }
    }
  }

  /// Hands probe feature microbatches to workers with spare credit, within the configured share
  /// of compute time (all of it once training is done).
  func assignProbes(now: Date) {
    guard let run = probeRun, !run.evaluating else { return }
    for w in workers.values.sorted(by: { $0.lastAssigned < $1.lastAssigned }) where (workers[w.id]?.credit ?? 0) > 0 && w.numericsChecked {
      while let idx = run.queue.first, run.tasks[idx].done { run.queue.removeFirst() }
      guard !run.queue.isEmpty else { return }
      let withinShare = trainingDone || run.probeSeconds <= config.probes.share * (run.probeSeconds + run.trainingSeconds)
      guard withinShare else { return }
      // as with training microbatches: a re-issued task never goes back to the worker holding it
      guard let pos = run.queue.firstIndex(where: { !run.tasks[$0].done && !w.heldProbe.contains($0) }) else { continue }
      let idx = run.queue.remove(at: pos)
      if w.haveProbe != run.version {
        guard send(Message(.params, runHash: runHash, version: run.version, body: run.paramsPayload), to: w.id) else {
          run.queue.insert(idx, at: pos)
          continue
        }
        workers[w.id]?.haveProbe = run.version
      }
      guard send(Message(.task, runHash: runHash, version: run.version, meta: run.tasks[idx].meta, body: run.tasks[idx].body), to: w.id) else {
        run.queue.insert(idx, at: pos)
        continue
      }
      workers[w.id]?.heldProbe.append(idx)
      workers[w.id]?.credit -= 1
      workers[w.id]?.lastAssigned = now
      run.tasks[idx].sentAt = now
      run.tasks[idx].requeued = false
    }
  }

  /// Starts the next queued probe job, fits its probes when its features are in, records results.
  func tickProbes() {
    if probeRun == nil, let job = probes.next {
      do {
        let run = try ProbeRun(job: job, step: trainer.step, model: trainer.model, store: trainer.store,
                               firstTaskId: (probeRun?.nextTaskId ?? 1) + (UInt64(job.id) << 32))
        probeRun = run
        for id in workers.keys { workers[id]!.heldProbe = [] }  // indices of an earlier job
        probes.update(job.id) {
          $0.state = .running
          $0.step = trainer.step
        }
        options.log("probe \(job.id) started on the parameters of step \(trainer.step): \(run.tasks.count) feature microbatches, layers \(job.request.layers)")
      } catch {
        probes.update(job.id) {
          $0.state = .failed
          $0.error = "\(error)"
        }
        options.log("probe \(job.id) failed: \(error)")
      }
    }
    guard let run = probeRun else { return }
    if run.allFeaturesIn && !run.evaluating { run.evaluate() }
    guard let outcome = run.finished else { return }
    probeRun = nil
    switch outcome {
    case .success(let results):
      let best = ProbeSweep.bestLayer(results)
      probes.update(run.jobId) {
        $0.state = .done
        $0.results = results
        $0.bestLayer = best?.features
        $0.featureSeconds = run.featureSeconds
      }
      let job = probes.jobs.first { $0.id == run.jobId }!
      if let data = try? JSONEncoder().encode(job), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
        probeLog.append(object)
      }
      var accuracies: [String: Double] = [:]
      for r in results {
        accuracies["probe/\(r.features)/test_accuracy"] = r.testAccuracy
        accuracies["probe/\(r.features)/val_accuracy"] = r.valAccuracy
      }
      metrics.tensorboard?.scalars(step: run.step, accuracies)
      options.log(job.summary)
    case .failure(let error):
      probes.update(run.jobId) {
        $0.state = .failed
        $0.error = "\(error)"
      }
    }
  }

  /// Drops silent workers (their microbatches go back to the queue) and re-issues microbatches
  /// held too long by a worker that still answers heartbeats (stuck).
  func expire(now: Date) {
    for w in workers.values where now.timeIntervalSince(w.lastHeard) > deadAfter {
      drop(w.id, because: String(format: "no heartbeat for %.1f s", now.timeIntervalSince(w.lastHeard)))
    }
    let limit = max(config.cluster.taskTimeout, 5 * slowestTask)
    for i in tasks.indices where !tasks[i].done && !tasks[i].requeued {
      if let t = tasks[i].sentAt, now.timeIntervalSince(t) > limit {
        tasks[i].requeued = true
        queue.insert(i, at: 0)
        options.log(String(format: "microbatch %d of step %d out for %.0f s: also handing it to another worker", tasks[i].meta.micro,
                           tasks[i].meta.step, now.timeIntervalSince(t)))
      }
    }
    if let run = probeRun, !run.evaluating {
      for i in run.tasks.indices where !run.tasks[i].done && !run.tasks[i].requeued {
        if let t = run.tasks[i].sentAt, now.timeIntervalSince(t) > limit {
          run.tasks[i].requeued = true
          run.queue.insert(i, at: 0)
          options.log(String(format: "probe %d feature microbatch %d out for %.0f s: also handing it to another worker", run.jobId, i,
                             now.timeIntervalSince(t)))
        }
      }
    }
  }

  func drop(_ id: Data, because why: String) {
    guard let w = workers.removeValue(forKey: id) else { return }
    let back = requeue(w.held)
    if let run = probeRun { run.queue.insert(contentsOf: w.heldProbe.filter { $0 < run.tasks.count && !run.tasks[$0].done }, at: 0) }
    options.log("worker \(w.label) lost: \(why); \(back) microbatch(es) go to others (\(workers.count) left)")
  }

  /// Puts tasks not yet done back at the front of the queue, in order; returns how many.
  @discardableResult
  func requeue(_ indices: [Int]) -> Int {
    let back = indices.filter { $0 < tasks.count && !tasks[$0].done }
    queue.insert(contentsOf: back, at: 0)
    return back.count
  }

  /// Sends to a worker; false (and the worker dropped) when it is gone or its queue is full.
  @discardableResult
  func send(_ m: Message, to id: Data) -> Bool {
    let bytes = m.encode()
    switch socket.send([id, bytes]) {
    case .sent:
      workers[id]?.bytesReceived += bytes.count
      bytesOut += bytes.count
      return true
    case .unreachable:
      drop(id, because: "unreachable")
    case .wouldBlock:
      drop(id, because: "its queue is full (stuck?)")
    }
    return false
  }

  // MARK: - Messages

  func handle(_ received: ZMQSocket.Received) {
    guard received.frames.count == 2 else {
      badInput.note("dropped a \(received.frames.count)-frame message from \(received.peerAddress)")
      return
    }
    let id = received.frames[0]
    let bytes = received.frames[1]
    bytesIn += bytes.count
    let m: Message
    do { m = try Message.decode(bytes) } catch let e as ProtocolError {
      badInput.note("dropped message from \(received.peerAddress): \(e)")
      if e.otherVersion != nil {
        send(Message(.refuse, meta: Meta.Refuse(reason: "coordinator speaks protocol version \(Message.protocolVersion); \(e)", fatal: true)), to: id)
      }
      return
    } catch {
      badInput.note("dropped message from \(received.peerAddress): \(error)")
      return
    }
    if workers[id] != nil {
      workers[id]!.lastHeard = Date()
      workers[id]!.bytesSent += bytes.count
    }
    switch m.kind {
    case .hello: hello(m, from: id, address: received.peerAddress)
    case .statusRequest: send(Message(.statusReply, runHash: runHash, version: version, meta: status()), to: id)
    case .probeSubmit: submitProbe(m, from: id, address: received.peerAddress)
    case .probeListRequest: send(Message(.probeList, runHash: runHash, meta: Meta.ProbeList(jobs: probes.jobs.reversed())), to: id)
    case .heartbeat, .ready, .result, .fetch:
      guard workers[id] != nil, m.runHash == runHash else {
        badInput.note("\(m.kind) from unknown peer \(received.peerAddress): asking it to say hello")
        send(Message(.reset, runHash: runHash), to: id)
        return
      }
      do {
        switch m.kind {
        case .ready: try ready(m, from: id)
        case .result:
          try result(m, from: id)
        case .fetch:
          // It lacks the parameters of a task it holds (it keeps the task and waits for them).
          if let run = probeRun, m.version == run.version {
            if send(Message(.params, runHash: runHash, version: run.version, body: run.paramsPayload), to: id) { workers[id]?.haveProbe = run.version }
            break
          }
          if m.version >= Message.probeVersionBase {
            // that probe job is over: an empty body says so, and the worker drops its tasks
            send(Message(.params, runHash: runHash, version: m.version), to: id)
            break
          }
          if paramsPayload == nil { paramsPayload = GradientCodec.encode(trainer.model.params, count: trainer.model.parameterCount) }
          if send(Message(.params, runHash: runHash, version: version, body: paramsPayload!), to: id) { workers[id]?.have = version }
        default: break
        }
      } catch {
        badInput.note("dropped \(m.kind) from \(workers[id]?.label ?? received.peerAddress): \(error)")
      }
    default:
      badInput.note("dropped unexpected \(m.kind) message from \(received.peerAddress)")
    }
  }

  /// Queues a probe job from an operator; the reply lists jobs, the new one first.
  func submitProbe(_ m: Message, from id: Data, address: String) {
    let req: Meta.ProbeSubmit
    do { req = try m.decodeMeta(Meta.ProbeSubmit.self) } catch {
      badInput.note("dropped probe submission from \(address): \(error)")
      return
    }
    let request = ProbeJob.Request(config.probes, overriddenBy: req)
    if let problem = request.problem(modelLayers: trainer.model.config.layers) {
      send(Message(.refuse, meta: Meta.Refuse(reason: problem, fatal: false)), to: id)
      return
    }
    let job = probes.add(request, origin: "submitted", step: trainer.step)
    options.log("probe \(job.id) submitted from \(address): layers \(request.layers), \(request.trainImages) train images\(request.extras)")
    send(Message(.probeList, runHash: runHash, meta: Meta.ProbeList(jobs: [job] + probes.jobs.filter { $0.id != job.id }.reversed())), to: id)
  }

  func hello(_ m: Message, from id: Data, address: String) {
    let h: Meta.Hello
    do { h = try m.decodeMeta(Meta.Hello.self) } catch {
      badInput.note("dropped hello from \(address): \(error)")
      return
    }
    if let theirs = h.config, let diff = Self.difference(mine: config, theirs: theirs) {
      options.log("refused worker \(h.name) (\(address)): its config differs (\(diff))")
      send(Message(.refuse, meta: Meta.Refuse(reason: "this coordinator runs another config: \(diff)", fatal: true)), to: id)
      return
    }
    var otherNumerics: String?
    switch numerics.admit(h.numerics) {
    case .accept: break
    case .acceptMixed(let why): otherNumerics = why
    case .pin(let core):
      options.log("worker \(h.name) (\(address)) runs OpenBLAS \(h.numerics?.openblasCore ?? "?") kernels: pinning it to the run's \(core)")
      send(Message(.refuse, meta: Meta.Refuse(reason: "the run computes with OpenBLAS \(core) kernels", fatal: false, pin: core)), to: id)
      return
    case .refuse(let why):
      options.log("refused worker \(h.name) (\(address)): \(why)")
      send(Message(.refuse, meta: Meta.Refuse(reason: "this run's numerics cannot be had here: \(why)", fatal: true)), to: id)
      return
    }
    if workers[id] != nil { drop(id, because: "it said hello again") }
    workers[id] = WorkerRecord(id: id, name: h.name, host: h.host, pid: h.pid, address: address, lastHeard: Date())
    workers[id]!.otherNumerics = otherNumerics
    options.log("worker \(h.name) joined from \(address) (pid \(h.pid) on \(h.host)); \(workers.count) connected")
    let w = Meta.Welcome(runHash: runHash, model: trainer.model.config, threads: numerics.fingerprint.threads, codec: config.cluster.codec,
                         heartbeatInterval: interval, heartbeatMisses: config.cluster.heartbeatMisses, step: trainer.step,
                         steps: options.end, recompute: config.train.recompute, numerics: numerics.fingerprint, policy: numerics.policy)
    send(Message(.welcome, runHash: runHash, version: version, meta: w), to: id)
  }

  /// How much work the worker can take, and which tasks it still holds (any others it dropped).
  func ready(_ m: Message, from id: Data) throws {
    let r = try m.decodeMeta(Meta.Ready.self)
    guard let record = workers[id] else { return }
    if !record.numericsChecked {
      switch numerics.check(r.numerics) {
      case .accept, .pin: break
      case .acceptMixed(let why): workers[id]!.otherNumerics = workers[id]!.otherNumerics ?? why
      case .refuse(let why):
        options.log("refused worker \(record.label): \(why)")
        send(Message(.refuse, meta: Meta.Refuse(reason: "this run's numerics cannot be had here: \(why)", fatal: true)), to: id)
        drop(id, because: "its numerics are not the run's")
        return
      }
      workers[id]!.numericsChecked = true
    }
    let holding = Set(r.holding)
    workers[id]!.held.removeAll { $0 >= tasks.count }
    let (kept, lost) = workers[id]!.held.reduce(into: ([Int](), [Int]())) { acc, idx in
      if holding.contains(tasks[idx].meta.id) { acc.0.append(idx) } else { acc.1.append(idx) }
    }
    requeue(lost)
    workers[id]!.held = kept
    if let run = probeRun {
      workers[id]!.heldProbe.removeAll { $0 >= run.tasks.count }
      let lostProbe = workers[id]!.heldProbe.filter { !holding.contains(run.tasks[$0].meta.id) && !run.tasks[$0].done }
      run.queue.insert(contentsOf: lostProbe, at: 0)
      workers[id]!.heldProbe.removeAll { lostProbe.contains($0) }
    } else {
      workers[id]!.heldProbe = []
    }
    workers[id]!.credit = max(0, min(r.credit, 4))
    workers[id]!.have = r.have
  }

  func result(_ m: Message, from id: Data) throws {
    guard let record = workers[id], record.numericsChecked else { return }  // no work before its numerics are
    if let why = record.otherNumerics {
      // (marked even if this result turns out unusable: it was computed with other numerics)
      markNotReproducible(because: "worker \(record.label) contributed: \(why)")
      workers[id]!.otherNumerics = nil
    }
    workers[id]!.credit += 1
    let r = try m.decodeMeta(Meta.Result.self)
    if r.kind == .features {
      guard let run = probeRun, m.version == run.version, let idx = run.tasks.firstIndex(where: { $0.meta.id == r.id }) else {
        staleResults += 1
        return
      }
      workers[id]!.heldProbe.removeAll { $0 == idx }
      guard !run.tasks[idx].done else { return }
      do { try run.store(idx, payload: m.body) } catch {
        run.queue.insert(idx, at: 0)
        throw error
      }
      run.probeSeconds += min(r.seconds, 3600)
      workers[id]!.microbatchesDone += 1
      return
    }
    if r.kind == .gradient { probeRun?.trainingSeconds += min(r.seconds, 3600) }
    guard m.version == version, r.id >= firstId, r.id < firstId + UInt64(tasks.count) else {
      staleResults += 1
      return
    }
    let idx = Int(r.id - firstId)
    if let k = workers[id]!.held.firstIndex(of: idx) {
      workers[id]!.held.remove(at: k)
      // Should the result prove unusable, the microbatch goes to the front of the queue again.
      queue.insert(idx, at: 0)
    }
    let t = tasks[idx].meta
    guard t.kind == r.kind, t.step == r.step, t.micro == r.micro else { throw ProtocolError("result does not match its task") }
    guard !tasks[idx].done else { return }
    guard r.loss.isFinite || t.kind == .validation else { throw ProtocolError("non-finite loss") }
    switch t.kind {
    case .features:
      throw ProtocolError("features result for a training task")
    case .validation:
      guard m.body.isEmpty else { throw ProtocolError("validation result with a body") }
      valLosses[t.micro] = r.loss
    case .gradient:
      guard m.body.first == config.cluster.codec.code else { throw ProtocolError("gradient not in the run's codec (\(config.cluster.codec))") }
      let n = trainer.model.parameterCount
      if t.micro == accumulated {
        try GradientCodec.decode(m.body, into: scratch, count: n)
        add(scratch, loss: r.loss, scale: t.scale)
        while let next = outOfOrder.removeValue(forKey: accumulated) {
          next.gradient.withUnsafeBufferPointer { add($0.baseAddress!, loss: next.loss, scale: t.scale) }
        }
      } else {
        var g = [Float](repeating: 0, count: n)
        try g.withUnsafeMutableBufferPointer { try GradientCodec.decode(m.body, into: $0.baseAddress!, count: n) }
        outOfOrder[t.micro] = (g, r.loss)
      }
    }
    tasks[idx].done = true
    workers[id]!.microbatchesDone += 1
    slowestTask = max(slowestTask, min(r.seconds, 3600))
    computeSeconds += r.seconds
  }

  /// The in-order sum: exactly what `Trainer.trainStep` does with each microbatch.
  func add(_ g: UnsafePointer<Float>, loss: Double, scale: Float) {
    trainer.optimizer.accumulate(g)
    lossSum += loss * Double(scale)
    accumulated += 1
  }

  /// A contribution with other numerics: the run's bytes are no longer reproducible (said
  /// once, and kept in every checkpoint from now on).
  func markNotReproducible(because why: String) {
    guard numerics.reproducible else { return }
    numerics.reproducible = false
    trainer.numerics = numerics
    options.log("run marked NOT reproducible (cluster.numerics: any): \(why)")
  }

  // MARK: - Status and identity

  func status() -> ClusterStatus {
    let now = Date()
    var queued: [String] = []
    let s = trainer.step
    if validating && !valLosses.allSatisfy({ $0 != nil }) { queued.append("validation at step \(s)") }
    let every = config.checkpoint.every
    let nextCheckpoint = min(options.end, (s / every + 1) * every)
    queued.append("checkpoint at step \(s % every == 0 && s != lastCheckpointStep ? s : nextCheckpoint)")
    for job in probes.jobs where job.state == .queued || job.state == .running { queued.append(job.summary) }
    if config.train.valEvery > 0 { queued.append("validation at step \(min(config.train.steps, (s / config.train.valEvery + 1) * config.train.valEvery))") }
    return ClusterStatus(
      runDir: options.runDir, step: s, steps: options.end, loss: trainer.lastLoss, valLoss: trainer.lastValLoss,
      tokensPerSecond: tokensPerSecond, elapsedSeconds: now.timeIntervalSince(started), codec: config.cluster.codec.rawValue,
      workers: workers.values.sorted { $0.name < $1.name }.map {
        ClusterStatus.Worker(name: $0.name, address: $0.address, host: $0.host, pid: $0.pid,
                             secondsSinceHeartbeat: now.timeIntervalSince($0.lastHeard), microbatchesDone: $0.microbatchesDone,
                             bytesSent: $0.bytesSent, bytesReceived: $0.bytesReceived, busy: !$0.held.isEmpty)
      },
      insecure: insecure, encrypted: zap != nil, queuedTasks: queued, microbatchesPending: queue.filter { !tasks[$0].done }.count,
      microbatchesOutstanding: workers.values.reduce(0) { $0 + $1.held.count }, droppedMessages: badInput.total,
      numerics: numerics.fingerprint.summary + " (\(numerics.policy.rawValue))", reproducible: numerics.reproducible)
  }

  /// FNV-1a over the run's settings, model shape and palette: messages of another run are refused.
  static func runHash(config: RunConfig, model: ModelConfig, palette: [[Float]]) -> UInt64 {
    struct Identity: Encodable {
      var config: RunConfig
      var model: ModelConfig
      var palette: [[Float]]
    }
    let e = JSONEncoder()
    e.outputFormatting = .sortedKeys
    let bytes = (try? e.encode(Identity(config: sharedSettings(config), model: model, palette: palette))) ?? Data()
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01B3
    }
    return h
  }

  /// The config without what is local to one host or to the coordinator alone (key files, the
  /// store's path, the checkpoint and probe schedules): what identifies a run to its workers.
  static func sharedSettings(_ config: RunConfig) -> RunConfig {
    var c = config
    c.cluster.secretKey = nil
    c.cluster.serverKey = nil
    c.cluster.allow = nil
    c.data.store = ""
    c.checkpoint = RunConfig.Checkpoint()
    c.probes = RunConfig.Probes()
    c.train.recompute = false  // memory, not bytes (the welcome passes it on)
    return c
  }

  /// The first setting that makes a worker's config incompatible with the coordinator's, or nil.
  static func difference(mine: RunConfig, theirs: RunConfig) -> String? {
    func flat(_ c: RunConfig) -> [String: String] {
      var c = sharedSettings(c)
      c.train.threads = 0
      c.train.logEvery = 1
      c.train.steps = 1
      c.model.seq = nil
      c.model.vocab = nil
      let e = JSONEncoder()
      e.outputFormatting = .sortedKeys
      guard let d = try? e.encode(c), let o = try? JSONSerialization.jsonObject(with: d) as? [String: [String: Any]] else { return [:] }
      var out: [String: String] = [:]
      for (section, values) in o { for (k, v) in values { out["\(section).\(k)"] = "\(v)" } }
      return out
    }
    let a = flat(mine)
    let b = flat(theirs)
    for key in Set(a.keys).union(b.keys).sorted() where a[key] != b[key] {
      return "\(key) is \(a[key] ?? "unset") here, \(b[key] ?? "unset") in the worker's config"
    }
    return nil
  }
}
