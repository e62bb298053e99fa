import CZeroMQ
import Foundation
import IGPTKernels
import IGPTModel
import IGPTTraining

/// A stateless gradient engine: connects to a coordinator, builds the model it is told to,
/// takes parameters when its version is stale, and computes microbatches with
/// `Gradient.compute`, exactly the code `igpt train` runs.
///
/// The socket lives on the calling thread, which keeps answering heartbeats; each microbatch is
/// computed on a background thread. A silent coordinator makes the worker reconnect with
/// backoff; `done` ends it.
public final class Worker {
  public struct Options {
    public var endpoint: String
    public var name: String
    /// Threads when the run's numerics policy is any (strict runs compute with the run's count).
    public var threads: Int?
    /// Refuse to work for a coordinator running another config.
    public var config: RunConfig?
    /// Give up after this many seconds without a coordinator (nil = never).
    public var giveUpAfter: Double?
    /// CURVE keys for a coordinator that requires them.
    public var keys: ClientKeys?
    /// Fault injection for tests: after this many tasks, computations hang (the socket thread
    /// keeps heartbeating), as a worker stuck in a kernel would.
    public var stallAfter: Int?
    /// Capacity benchmarks (`igpt bench-cluster`): answer every task at once with a
    /// precomputed result of the right size (`EmulatedWork`), parameters received, not decoded.
    public var emulate = false
    public var log: (String) -> Void
    public var shouldStop: () -> Bool
    public init(endpoint: String, name: String, threads: Int? = nil, config: RunConfig? = nil, giveUpAfter: Double? = nil,
                keys: ClientKeys? = nil, log: @escaping (String) -> Void, shouldStop: @escaping () -> Bool) {
      self.keys = keys
      self.endpoint = endpoint
      self.name = name
      self.threads = threads
      self.config = config
      self.giveUpAfter = giveUpAfter
      self.log = log
      self.shouldStop = shouldStop
    }
  }

  public enum Outcome: Equatable {
    case done(step: Int)
    case stopped
    case refused(String)
    case gaveUp
  }

  /// A finished computation, handed from the compute thread to the socket thread, which a
  /// byte on the wake-up pipe rouses from its poll at once.
  final class ComputeHandoff: @unchecked Sendable {
    let lock = NSLock()
    var message: Message?
    /// A sharded gradient's slices, pushed to the shards before `message` goes out.
    var slices: [Data] = []
    /// The connection the finished task came over.
    var connection = 0
    var busy = false
    var pipe: [Int32] = [-1, -1]

    init() {
      _ = Foundation.pipe(&pipe)
      _ = fcntl(pipe[0], F_SETFL, O_NONBLOCK)
    }

    deinit {
      close(pipe[0])
      close(pipe[1])
    }

    func finish(_ m: Message, slices s: [Data] = [], connection c: Int) {
      lock.withLock {
        message = m
        slices = s
        connection = c
        busy = false
      }
      var b: UInt8 = 1
      _ = write(pipe[1], &b, 1)
    }

    func take() -> (Message, [Data], Int)? {
      var buf = [UInt8](repeating: 0, count: 64)
      while read(pipe[0], &buf, buf.count) > 0 {}
      return lock.withLock {
        defer {
          message = nil
          slices = []
        }
        return message.map { ($0, slices, connection) }
      }
    }
  }

  let options: Options
  var socket: ZMQSocket?
  var welcome: Wire.Welcome?
  /// A welcome that came while a job was computing: applied when it ends (it may change the
  /// model, the threads and the codec's residual under the job).
  var pendingWelcome: Wire.Welcome?
  /// This process's numerics at the welcome's widths and threads, sent in each ready.
  var fingerprint: NumericsFingerprint?
  var model: IGPT?
  var residual: UnsafeMutablePointer<Float>?
  /// Training parameter version in hand.
  var parameterVersion: UInt64?
  var pendingParams: Message?
  /// The parameter snapshot of a probe job, kept beside the training parameters so probe
  /// feature tasks and gradient tasks can interleave without re-sending either.
  var probeModel: IGPT?
  var probeSnapshot: UInt64?
  var pendingProbeParams: Message?
  /// Results ZeroMQ did not take (the queue to the coordinator was full), sent again first.
  var unsent: [(id: UInt64, message: Message)] = []
  /// Tasks received and not started, with their decoded meta.
  var pendingTasks: [(message: Message, task: Wire.Task)] = []
  /// Id of the task being computed.
  var computing: UInt64?
  var fetchSent = false
  /// Tasks held at once: one computing, one at hand for when it finishes.
  static let capacity = 2
  let slot = ComputeHandoff()
  var lastHeard = Date()
  var lastSent = Date.distantPast
  var connection = 0
  public private(set) var microbatchesDone = 0
  let badInput: RateLimitedLog
  /// The precomputed answers of an emulated worker.
  var emulated: EmulatedWork?
  /// The run's parameter-server shards (empty: the coordinator serves parameters and sums).
  var shards: [ShardLink] = []
  /// Parameter slices of `sliceVersion` received so far, by shard.
  var slicesIn: [Int: Data] = [:]
  var sliceVersion: UInt64?
  /// Results waiting for their shards to take the gradient's slices: shards yet to answer.
  var pushing: [UInt64: (result: Message, waiting: Set<Int>)] = [:]

  public init(options: Options) {
    self.options = options
    badInput = RateLimitedLog(log: options.log)
  }

  deinit { residual?.deallocate() }

  var interval: Double { welcome?.heartbeatInterval ?? 1 }
  var deadAfter: Double { interval * Double(welcome?.heartbeatMisses ?? 5) }

  public func run() throws -> Outcome {
    var backoff = 0.5
    var silentSince: Date?
    try connect()
    var listening = ListeningClock()
    while true {
      if options.shouldStop() {
        socket?.close()
        return .stopped
      }
      let now = Date()
      // time this process was stopped or starved is not the coordinator's silence
      lastHeard = ListeningClock.excused(lastHeard, by: listening.away(now: now, allowance: interval), now: now)
      if now.timeIntervalSince(lastHeard) > deadAfter {
        silentSince = silentSince ?? lastHeard
        if let limit = options.giveUpAfter, now.timeIntervalSince(silentSince!) > limit { return .gaveUp }
        try reconnect(after: backoff)
        backoff = min(backoff * 2, 8)
        continue
      }
      ZMQSocket.poll([socket!] + shards.map(\.socket), timeout: interval / 2, orReadable: slot.pipe[0])
      receiveFromShards()
      while let r = socket?.receive() {
        lastHeard = Date()
        silentSince = nil
        backoff = 0.5
        if let outcome = try handle(r) { return outcome }
      }
      sendResults()
      if !slot.lock.withLock({ slot.busy }) {
        if let w = pendingWelcome {
          pendingWelcome = nil
          try setUp(w)
          sendReady()
        }
        try startNext()
      }
      if Date().timeIntervalSince(lastSent) >= interval { send(Message(.heartbeat, runHash: welcome?.runHash ?? 0)) }
    }
  }

  /// Waits `backoff` seconds, saying why, then connects afresh.
  func reconnect(after backoff: Double) throws {
    let hint = welcome == nil ? (options.keys == nil ? " (no answer yet: if it requires keys, give --secret-key and --server-key)"
                                                      : " (no answer yet: is this worker's key on its allow-list, and --server-key its public key?)") : ""
    options.log(String(format: "coordinator at %@ silent for %.1f s: reconnecting in %.1f s%@", options.endpoint,
                       Date().timeIntervalSince(lastHeard), backoff, hint))
    Thread.sleep(forTimeInterval: backoff)
    try connect()
  }

  /// Sends what ZeroMQ did not take before, then the result just computed.
  func sendResults() {
    while let m = unsent.first, send(m.message) { unsent.removeFirst() }
    guard let (m, slices, c) = slot.take() else { return }
    computing = nil
    // A result computed for an earlier connection is dropped: its run may have moved on.
    guard c == connection && m.runHash == welcome?.runHash else { return }
    if !slices.isEmpty {
      push(m, slices)  // the result goes out once every shard has taken its slice
      return
    }
    if !unsent.isEmpty || !send(m) {
      unsent.append(((try? m.decodeMeta(Wire.Result.self))?.id ?? 0, m))
      options.log("result not taken by ZeroMQ (the queue to the coordinator is full): kept to send again")
    }
  }

  /// A fresh socket and a hello (a new routing id, so nothing queued for the old one arrives).
  func connect() throws {
    socket?.close()
    let s = try ZMQSocket(.dealer)
    try s.setHighWaterMarks(64)
    connection += 1
    try s.set(ZMQ_ROUTING_ID, bytes: Array("\(options.name)-\(getpid())-\(connection)-\(UInt32.random(in: 0...UInt32.max))".utf8.prefix(200)))
    try options.keys?.apply(to: s)
    try s.connect(options.endpoint)
    socket = s
    welcome = nil
    pendingWelcome = nil
    unsent = []
    pendingTasks = []
    pendingParams = nil
    pushing = [:]
    slicesIn = [:]
    sliceVersion = nil
    lastHeard = Date()
    sendHello()
  }

  func sendHello() {
    let hello = Wire.Hello(name: options.name, host: ProcessInfo.processInfo.hostName, pid: getpid(), config: options.config,
                           numerics: .current())
    send(Message(.hello, meta: hello))
  }

  /// Hands a message to ZeroMQ; false when it did not take it (the queue is full).
  @discardableResult
  func send(_ m: Message) -> Bool {
    lastSent = Date()
    return socket?.send([m.encode()]) == .sent
  }

  func setUp(_ w: Wire.Welcome) throws {
    if model?.config != w.model {
      try w.model.validate()
      try MemoryBudget.check(MemoryBudget.model(w.model) * (w.codec == .bf16 ? 1.5 : 1), for: "the coordinator's model")
      model = nil
      model = try IGPT(config: w.model)
      residual?.deallocate()
      residual = nil
    }
    model?.recomputeActivations = w.recompute
    if w.codec == .bf16 && residual == nil {
      residual = .allocate(capacity: model!.parameterCount)
      residual!.initialize(repeating: 0, count: model!.parameterCount)
    }
    let runThreads = w.threads > 0 ? w.threads : ProcessInfo.processInfo.activeProcessorCount
    var threads = options.threads ?? runThreads
    if w.policy == .strict && threads != runThreads {
      options.log("computing with the run's \(runThreads) threads, not --threads \(threads) (the thread count changes the bytes; cluster.numerics: strict)")
      threads = runThreads
    }
    Parallel.threads = threads
    BLAS.setThreads(1)
    fingerprint = try NumericsFingerprint.measure(w.model, threads: threads)
    if welcome == nil || welcome!.runHash != w.runHash {
      options.log("working for run \(String(w.runHash, radix: 16)) at step \(w.step)/\(w.steps): \(w.model.layers) layers x \(w.model.embd), \(model!.parameterCount) parameters, \(threads) threads, \(w.codec) gradients; numerics \(fingerprint!.summary)")
    }
    try connectShards(w.shards)
    welcome = w
    parameterVersion = nil
  }

  /// Tells the coordinator how many more tasks fit here and which ones are held.
  func sendReady() {
    guard let w = welcome else { return }
    // results not yet handed to ZeroMQ are held too: their microbatches are not lost
    let holding = (computing.map { [$0] } ?? []) + pendingTasks.map(\.task.id) + unsent.map(\.id) + pushing.keys.sorted()
    send(Message(.ready, runHash: w.runHash, meta: Wire.Ready(credit: Self.capacity - holding.count, parameterVersion: parameterVersion, holding: holding,
                                                              numerics: fingerprint)))
  }

  /// Installs waiting parameters, then starts the next task when its version is in hand.
  func startNext() throws {
    guard let w = welcome, let model else { return }
    try installParameters(model)
    guard let (m, t) = pendingTasks.first else { return }
    let wanted = t.kind == .features ? probeSnapshot : parameterVersion
    guard m.version == wanted, let computeModel = t.kind == .features ? probeModel : model else {
      if t.kind != .features, let h = parameterVersion, m.version < h {
        // Older than the parameters in hand: the coordinator has moved on.
        pendingTasks.removeFirst()
        sendReady()
      } else if !shards.isEmpty && t.kind != .features {
        fetchFromShards(m.version, runHash: w.runHash)
      } else if !fetchSent {
        fetchSent = true
        send(Message(.fetch, runHash: w.runHash, version: m.version))
      }
      return
    }
    pendingTasks.removeFirst()
    startJob(m, t, model: computeModel, codec: t.kind == .features ? .lossless : w.codec, runHash: w.runHash)
  }

  /// Installs parameters that came (training or a probe job's snapshot); "gone" ones (an empty
  /// body: a probe job that ended) make the tasks at that version obsolete.
  func installParameters(_ model: IGPT) throws {
    for p in [pendingParams, pendingProbeParams].compactMap({ $0 }) where p.body.isEmpty {
      if p.version >= Message.probeSnapshotBase { pendingProbeParams = nil } else { pendingParams = nil }
      fetchSent = false
      pendingTasks.removeAll { $0.message.version == p.version }
      sendReady()
    }
    if let p = pendingParams {
      pendingParams = nil
      fetchSent = false
      parameterVersion = decode(p, into: model, what: "parameters")
    }
    if let p = pendingProbeParams {
      pendingProbeParams = nil
      fetchSent = false
      if probeModel?.config != model.config { probeModel = try IGPT(config: model.config) }
      probeSnapshot = decode(p, into: probeModel!, what: "probe parameters")
    }
  }

  /// The version of parameters decoded into a model, or nil (said) when malformed.
  private func decode(_ p: Message, into model: IGPT, what: String) -> UInt64? {
    if options.emulate { return p.version }
    do {
      try GradientCodec.decode(p.body, into: model.params, count: model.parameterCount)
      return p.version
    } catch {
      badInput.note("dropped \(what): \(error)")
      return nil
    }
  }

  /// Checks a task's tokens and computes it on a background thread.
  func startJob(_ m: Message, _ t: Wire.Task, model: IGPT, codec: RunConfig.GradientCodecKind, runHash: UInt64) {
    let microbatches: [Microbatch]
    do {
      microbatches = try t.decodeMicrobatches(m.body, vocab: model.config.vocab)
      guard t.length == model.config.seq else { throw ProtocolError("task of length \(t.length) for a model of \(model.config.seq)") }
      if model.config.objective == .bert && !t.hasMask { throw ProtocolError("BERT task without a mask") }
      if t.kind != .gradient && t.microbatches != 1 { throw ProtocolError("\(t.kind) task of \(t.microbatches) microbatches") }
      try MemoryBudget.check(MemoryBudget.activations(model.config, batch: t.count, seq: t.length, threads: Parallel.threads, recompute: model.recomputeActivations)
                               + (t.microbatches > 1 ? Double(GradientTree(count: t.microbatches).depth + 1) * 4 * Double(model.parameterCount) : 0),
                             for: "a task of \(t.microbatches) x \(t.count) images")
    } catch {
      badInput.note("dropped task: \(error)")
      sendReady()
      return
    }
    if options.emulate {
      if emulated?.parameterCount != model.parameterCount { emulated = EmulatedWork(parameterCount: model.parameterCount) }
      computing = t.id
      let out = emulated!.result(t, codec: codec, config: model.config, runHash: runHash, version: m.version,
                                 slices: t.kind == .gradient ? shards.map(\.range) : [])
      slot.finish(out.message, slices: out.slices, connection: connection)
      microbatchesDone += microbatches.count
      return
    }
    var job = WorkerJob(model: model, residual: residual, codec: codec, runHash: runHash, version: m.version, task: t,
                        microbatches: microbatches, stallAt: options.stallAfter.map { $0 - microbatchesDone })
    if t.kind == .gradient { job.slices = shards.map { $0.endpoint.lower..<$0.endpoint.upper } }
    let handoff = slot
    handoff.lock.withLock { handoff.busy = true }
    computing = t.id
    let c = connection
    let ready = job
    Thread.detachNewThread {
      let out = ready.run()
      handoff.finish(out.message, slices: out.slices, connection: c)
    }
    microbatchesDone += microbatches.count
  }
}
