import Foundation
import IGPTModel
import IGPTTraining

/// Who is in the run: admission of a hello (config, numerics), the check of a worker's first
/// ready, heartbeats, and the silent ones. Decisions only: the coordinator sends the replies.
struct Membership {
  /// What to do with a hello.
  enum Admission: Equatable {
    case welcome(otherNumerics: String?)
    /// Refused with a reason for the worker, and a line for the log.
    case refuse(reason: String, fatal: Bool, pin: String?, log: String)
  }

  let config: RunConfig
  private(set) var workers: [Data: WorkerRecord] = [:]

  init(config: RunConfig) { self.config = config }

  var count: Int { workers.count }
  var ids: [Data] { Array(workers.keys) }
  subscript(id: Data) -> WorkerRecord? { workers[id] }

  /// Whether a worker that says hello may join, and how.
  func admit(_ h: Wire.Hello, address: String, numerics: RunNumerics) -> Admission {
    if let theirs = h.config, let diff = RunIdentity.difference(mine: config, theirs: theirs) {
      return .refuse(reason: "this coordinator runs another config: \(diff)", fatal: true, pin: nil,
                     log: "refused worker \(h.name) (\(address)): its config differs (\(diff))")
    }
    switch numerics.admit(h.numerics) {
    case .accept: return .welcome(otherNumerics: nil)
    case .acceptMixed(let why): return .welcome(otherNumerics: why)
    case .pin(let core):
      return .refuse(reason: "the run computes with OpenBLAS \(core) kernels", fatal: false, pin: core,
                     log: "worker \(h.name) (\(address)) runs OpenBLAS \(h.numerics?.openblasCore ?? "?") kernels: pinning it to the run's \(core)")
    case .refuse(let why):
      return .refuse(reason: "this run's numerics cannot be had here: \(why)", fatal: true, pin: nil,
                     log: "refused worker \(h.name) (\(address)): \(why)")
    }
  }

  mutating func join(_ id: Data, _ h: Wire.Hello, address: String, otherNumerics: String?, now: Date) {
    workers[id] = WorkerRecord(id: id, name: h.name, host: h.host, pid: h.pid, address: address, lastHeard: now, otherNumerics: otherNumerics)
  }

  /// The fingerprint in a worker's first ready: nil = it may work; else why it is refused.
  mutating func checkNumerics(_ id: Data, _ fingerprint: NumericsFingerprint?, numerics: RunNumerics) -> String? {
    guard let w = workers[id], !w.numericsChecked else { return nil }
    switch numerics.check(fingerprint) {
    case .accept, .pin: break
    case .acceptMixed(let why): workers[id]!.otherNumerics = w.otherNumerics ?? why
    case .refuse(let why): return why
    }
    workers[id]!.numericsChecked = true
    return nil
  }

  /// Once per worker (policy any): why its first result makes the run not reproducible.
  mutating func takeOtherNumerics(_ id: Data) -> String? {
    defer { workers[id]?.otherNumerics = nil }
    return workers[id]?.otherNumerics
  }

  @discardableResult
  mutating func remove(_ id: Data) -> WorkerRecord? { workers.removeValue(forKey: id) }

  /// A message from a known worker: it is alive.
  mutating func heard(_ id: Data, bytes: Int, now: Date) {
    workers[id]?.lastHeard = now
    workers[id]?.bytesSent += bytes
  }

  /// The coordinator was away `seconds` (see `ListeningClock`): that time is not the workers' silence.
  mutating func excuse(_ seconds: Double, now: Date) {
    for id in workers.keys { workers[id]!.lastHeard = ListeningClock.excused(workers[id]!.lastHeard, by: seconds, now: now) }
  }

  mutating func sent(_ id: Data, bytes: Int) { workers[id]?.bytesReceived += bytes }
  mutating func update(_ id: Data, _ change: (inout WorkerRecord) -> Void) {
    if workers[id] != nil { change(&workers[id]!) }
  }

  /// Workers silent for longer than `deadAfter` seconds, with how long.
  func silent(now: Date, deadAfter: Double) -> [(id: Data, seconds: Double)] {
    workers.values.filter { now.timeIntervalSince($0.lastHeard) > deadAfter }.map { ($0.id, now.timeIntervalSince($0.lastHeard)) }
  }
}
