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
    /// Overrides the run's train.threads (gradients then may differ in the last bits from `igpt train`).
    public var threads: Int?
    /// Refuse to work for a coordinator running another config.
    public var config: RunConfig?
    /// Give up after this many seconds without a coordinator (nil = never).
    public var giveUpAfter: Double?
    public var log: (String) -> Void
    public var shouldStop: () -> Bool
    public init(endpoint: String, name: String, threads: Int? = nil, config: RunConfig? = nil, giveUpAfter: Double? = nil,
                log: @escaping (String) -> Void, shouldStop: @escaping () -> Bool) {
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

  /// A finished computation, handed from the compute thread to the socket thread.
  final class Slot: @unchecked Sendable {
    let lock = NSLock()
    var message: Message?
    var busy = false
  }

  let options: Options
  var socket: ZMQSocket?
  var welcome: Meta.Welcome?
  var model: IGPT?
  var residual: UnsafeMutablePointer<Float>?
  var have: UInt64?
  var pendingParams: Message?
  var pendingTasks: [Message] = []
  let slot = Slot()
  var lastHeard = Date()
  var lastSent = Date.distantPast
  var connection = 0
  public private(set) var microbatchesDone = 0
  let badInput: RateLimitedLog

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
    while true {
      if options.shouldStop() {
        socket?.close()
        return .stopped
      }
      let now = Date()
      if now.timeIntervalSince(lastHeard) > deadAfter {
        silentSince = silentSince ?? lastHeard
        if let limit = options.giveUpAfter, now.timeIntervalSince(silentSince!) > limit { return .gaveUp }
        options.log(String(format: "coordinator at %@ silent for %.1f s: reconnecting in %.1f s", options.endpoint,
                           now.timeIntervalSince(lastHeard), backoff))
        Thread.sleep(forTimeInterval: backoff)
        backoff = min(backoff * 2, 8)
        try connect()
        continue
      }
      if socket!.poll(timeout: 0.02) {
        while let r = socket?.receive() {
          lastHeard = Date()
          silentSince = nil
          backoff = 0.5
          if let outcome = try handle(r) { return outcome }
        }
      }
      if let m = slot.lock.withLock({ () -> Message? in
        defer { slot.message = nil }
        return slot.message
      }) {
        // A result computed for an earlier connection is dropped: its run may have moved on.
        if m.runHash == welcome?.runHash { send(m) }
      }
      if !slot.lock.withLock({ slot.busy }) { try startNext() }
      if Date().timeIntervalSince(lastSent) >= interval { send(Message(.heartbeat, runHash: welcome?.runHash ?? 0)) }
    }
  }

  /// A fresh socket and a hello (a new routing id, so nothing queued for the old one arrives).
  func connect() throws {
    socket?.close()
    let s = try ZMQSocket(.dealer)
    try s.setHighWaterMarks(64)
    connection += 1
    try s.set(ZMQ_ROUTING_ID, bytes: Array("\(options.name)-\(getpid())-\(connection)-\(UInt32.random(in: 0...UInt32.max))".utf8.prefix(200)))
    try s.connect(options.endpoint)
    socket = s
    welcome = nil
    pendingTasks = []
    pendingParams = nil
    lastHeard = Date()
    sendHello()
  }

  func sendHello() {
    let hello = Meta.Hello(name: options.name, host: ProcessInfo.processInfo.hostName, pid: getpid(), config: options.config)
    send(Message(.hello, meta: hello))
  }

  func send(_ m: Message) {
    socket?.send([m.encode()])
    lastSent = Date()
  }

  /// Handles one message; returns an outcome when the worker must stop.
  func handle(_ r: ZMQSocket.Received) throws -> Outcome? {
    guard r.frames.count == 1 else {
      badInput.note("dropped a \(r.frames.count)-frame message from the coordinator")
      return nil
    }
    let m: Message
    do { m = try Message.decode(r.frames[0]) } catch {
      badInput.note("dropped message from the coordinator: \(error)")
      return nil
    }
    switch m.kind {
    case .welcome:
      let w = try m.decodeMeta(Meta.Welcome.self)
      try setUp(w)
      send(Message(.ready, runHash: w.runHash, meta: Meta.Ready(credit: 1, have: have)))
    case .refuse:
      let why = (try? m.decodeMeta(Meta.Refuse.self)) ?? Meta.Refuse(reason: "no reason given", fatal: true)
      if why.fatal { return .refused(why.reason) }
      sendHello()
    case .reset:
      options.log("coordinator does not know this worker (restarted?): saying hello again")
      welcome = nil
      pendingTasks = []
      sendHello()
    case .done:
      let d = (try? m.decodeMeta(Meta.Done.self))?.step ?? -1
      return .done(step: d)
    case .params:
      guard m.runHash == welcome?.runHash else { return nil }
      pendingParams = m
    case .task:
      guard m.runHash == welcome?.runHash else { return nil }
      pendingTasks.append(m)
    case .heartbeat:
      break
    default:
      badInput.note("dropped unexpected \(m.kind) message from the coordinator")
    }
    return nil
  }

  func setUp(_ w: Meta.Welcome) throws {
    if model?.config != w.model {
      model = nil
      model = try IGPT(config: w.model)
      residual?.deallocate()
      residual = nil
    }
    if w.codec == .bf16 && residual == nil {
      residual = .allocate(capacity: model!.parameterCount)
      residual!.initialize(repeating: 0, count: model!.parameterCount)
    }
    let threads = options.threads ?? (w.threads > 0 ? w.threads : ProcessInfo.processInfo.activeProcessorCount)
    Parallel.threads = threads
    BLAS.setThreads(1)
    if welcome == nil || welcome!.runHash != w.runHash {
      options.log("working for run \(String(w.runHash, radix: 16)) at step \(w.step)/\(w.steps): \(w.model.layers) layers x \(w.model.embd), \(model!.parameterCount) parameters, \(threads) threads, \(w.codec) gradients")
    }
    welcome = w
    have = nil
  }

  /// Installs waiting parameters, then starts the next task when its version is in hand.
  func startNext() throws {
    guard let w = welcome, let model else { return }
    if let p = pendingParams {
      pendingParams = nil
      do {
        try GradientCodec.decode(p.body, into: model.params, count: model.parameterCount)
        have = p.version
      } catch {
        badInput.note("dropped parameters: \(error)")
        have = nil
      }
    }
    guard !pendingTasks.isEmpty else { return }
    let m = pendingTasks.removeFirst()
    guard m.version == have else {
      send(Message(.fetch, runHash: w.runHash, version: m.version))
      return
    }
    let t: Meta.Task
    let data: (tokens: [Int32], mask: [UInt8])
    do {
      t = try m.decodeMeta(Meta.Task.self)
      data = try t.decodeBody(m.body, vocab: model.config.vocab)
      guard t.length == model.config.seq else { throw ProtocolError("task of length \(t.length) for a model of \(model.config.seq)") }
      if model.config.objective == .bert && !t.hasMask { throw ProtocolError("BERT task without a mask") }
    } catch {
      badInput.note("dropped task: \(error)")
      send(Message(.ready, runHash: w.runHash, meta: Meta.Ready(credit: 1, have: have)))
      return
    }
    let mb = Microbatch(count: t.count, length: t.length, tokens: data.tokens, mask: data.mask)
    let job = Job(model: model, residual: residual, codec: w.codec, runHash: w.runHash, version: m.version, task: t, microbatch: mb)
    let handoff = slot
    handoff.lock.withLock { handoff.busy = true }
    Thread.detachNewThread {
      let result = job.run()
      handoff.lock.withLock {
        handoff.message = result
        handoff.busy = false
      }
    }
    microbatchesDone += 1
  }

  /// One microbatch's computation, off the socket thread.
  struct Job: @unchecked Sendable {
    let model: IGPT
    let residual: UnsafeMutablePointer<Float>?
    let codec: RunConfig.GradientCodecKind
    let runHash: UInt64
    let version: UInt64
    let task: Meta.Task
    let microbatch: Microbatch

    func run() -> Message {
      let start = Date()
      var body = Data()
      let loss: Double
      switch task.kind {
      case .gradient:
        loss = Gradient.compute(model: model, microbatch: microbatch, scale: task.scale)
        body = codec == .bf16 && residual != nil
          ? GradientCodec.encodeBF16(model.grads, residual: residual!, count: model.parameterCount)
          : GradientCodec.encode(model.grads, count: model.parameterCount)
      case .validation:
        loss = Gradient.loss(model: model, microbatch: microbatch)
      }
      let meta = Meta.Result(id: task.id, kind: task.kind, step: task.step, micro: task.micro, loss: loss,
                             seconds: Date().timeIntervalSince(start))
      return Message(.result, runHash: runHash, version: version, meta: meta, body: body)
    }
  }
}
