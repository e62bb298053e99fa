import CZeroMQ
import Foundation
import IGPTModel
import IGPTTraining

/// A parameter-server shard process (`igpt server`): connects to the coordinator like a worker,
/// is given one slice of the parameter slab (`ShardState`), and serves workers on its own
/// ROUTER socket: their gradient slices in (`push`), parameter slices out (`fetch`). The
/// coordinator decides each update from every shard's norm partials; the shard applies its
/// slice of it. It keeps nothing on disk: the coordinator restores it from a checkpoint.
public final class ShardServer {
  public struct Options {
    public var coordinator: String
    public var bind: String
    public var name: String
    /// CURVE: this shard's client keys towards the coordinator; the same secret key makes it a
    /// CURVE server for workers, who are checked against `allow`.
    public var keys: ClientKeys?
    public var allow: String?
    public var giveUpAfter: Double?
    public var log: (String) -> Void
    public var shouldStop: () -> Bool
    public init(coordinator: String, bind: String, name: String, log: @escaping (String) -> Void, shouldStop: @escaping () -> Bool) {
      self.coordinator = coordinator
      self.bind = bind
      self.name = name
      self.log = log
      self.shouldStop = shouldStop
    }
  }

  /// How it ended: as a worker does (the run done, stopped, refused, no coordinator).
  public typealias Outcome = Worker.Outcome

  let options: Options
  let upstream: ZMQSocket
  let workers: ZMQSocket
  let zap: ZAPHandler?
  public let endpoint: String
  var welcome: Wire.ShardWelcome?
  var state: ShardState?
  /// Workers waiting for a version this shard has not reached yet.
  var waitingFetches: [(id: Data, version: UInt64)] = []
  /// The step whose norm partials went to the coordinator (each step's once).
  var partialsSent: UInt64?
  /// The state parts restored so far, for the version being restored.
  var restoring: (version: UInt64, parts: Set<Int>)?
  var lastHeard = Date()
  var lastSent = Date.distantPast
  let badInput: RateLimitedLog

  public init(options: Options) throws {
    self.options = options
    badInput = RateLimitedLog(log: options.log)
    zap = try options.allow.map { try ZAPHandler(allowPath: $0, log: options.log) }
    workers = try ZMQSocket(.router)
    try options.keys?.secret.serve(on: workers)  // after the ZAP handler
    try workers.setHighWaterMarks(256)
    try workers.bind(options.bind)
    endpoint = Self.reachable(workers.lastEndpoint)
    upstream = try ZMQSocket(.dealer)
    try upstream.setHighWaterMarks(64)
    try options.keys?.apply(to: upstream)
    try upstream.connect(options.coordinator)
  }

  /// The bound endpoint as other hosts reach it (a wildcard address becomes this host's name).
  static func reachable(_ bound: String) -> String {
    for wildcard in ["tcp://0.0.0.0:", "tcp://*:"] where bound.hasPrefix(wildcard) {
      return "tcp://\(ProcessInfo.processInfo.hostName):" + bound.dropFirst(wildcard.count)
    }
    return bound
  }

  var interval: Double { welcome?.heartbeatInterval ?? 1 }
  var deadAfter: Double { interval * Double(welcome?.heartbeatMisses ?? 5) }

  public func run() throws -> Outcome {
    sayHello()
    var silentSince: Date?
    var listening = ListeningClock()
    while true {
      if options.shouldStop() { return .stopped }
      let now = Date()
      // time this process was stopped or starved is not the coordinator's silence
      lastHeard = ListeningClock.excused(lastHeard, by: listening.away(now: now, allowance: interval), now: now)
      if now.timeIntervalSince(lastHeard) > deadAfter {
        silentSince = silentSince ?? lastHeard
        if let limit = options.giveUpAfter, now.timeIntervalSince(silentSince!) > limit { return .gaveUp }
        if welcome != nil { options.log(String(format: "coordinator silent for %.1f s: waiting to be restored again", now.timeIntervalSince(lastHeard))) }
        forget()
        sayHello()
        lastHeard = now
      }
      ZMQSocket.poll([upstream, workers] + (zap.map { [$0.socket] } ?? []), timeout: interval / 2)
      zap?.serve()
      while let r = upstream.receive() {
        lastHeard = Date()
        silentSince = nil
        if let outcome = try fromCoordinator(r) { return outcome }
      }
      var n = 0
      while n < 256, let r = workers.receive() {
        fromWorker(r)
        n += 1
      }
      if Date().timeIntervalSince(lastSent) >= interval { toCoordinator(Message(.heartbeat, runHash: welcome?.runHash ?? 0)) }
    }
  }

  func sayHello() {
    let h = Wire.ShardHello(name: options.name, host: ProcessInfo.processInfo.hostName, pid: getpid(), endpoint: endpoint,
                            publicKey: (try? options.keys?.secret.publicKey())?.z85)
    toCoordinator(Message(.shardHello, meta: h))
  }

  /// Drops the run (the coordinator restarted or went away): it restores this shard again.
  func forget() {
    welcome = nil
    state = nil
    waitingFetches = []
    partialsSent = nil
    restoring = nil
  }

  @discardableResult
  func toCoordinator(_ m: Message) -> Bool {
    lastSent = Date()
    return upstream.send([m.encode()]) == .sent
  }

  func toWorker(_ m: Message, _ id: Data) { _ = workers.send([id, m.encode()]) }
}
