import Foundation
import IGPTTraining

/// The coordinator's parameter-server shards, decided without sockets: who serves which slice
/// (the first free index, in order of arrival), the version each has reached (restored,
/// updated), each step's norm partials, and who has gone silent.
struct ShardRoster {
  struct Member {
    let id: Data
    let hello: Wire.ShardHello
    var version: UInt64?
    var lastHeard: Date
    var label: String { "\(hello.name) (pid \(hello.pid) on \(hello.host))" }
  }

  let plan: ShardPlan
  private(set) var members: [Member?]
  /// Norm partials of the step being summed, by shard.
  private var partials: [Int: [Double]] = [:]
  private var partialsStep: UInt64?

  init(plan: ShardPlan) {
    self.plan = plan
    members = Array(repeating: nil, count: plan.shards)
  }

  var count: Int { plan.shards }

  func index(of id: Data) -> Int? { members.firstIndex { $0?.id == id } }

  /// A shard's hello: the slice it is given, or nil when every slice is served.
  mutating func admit(_ id: Data, _ hello: Wire.ShardHello, now: Date) -> Int? {
    if let k = index(of: id) {  // said hello again: restored afresh, its partials gone with its sum
      members[k] = nil
      partials[k] = nil
    }
    guard let k = members.firstIndex(where: { $0 == nil }) else { return nil }
    members[k] = Member(id: id, hello: hello, version: nil, lastHeard: now)
    return k
  }

  mutating func heard(_ id: Data, now: Date) {
    if let k = index(of: id) { members[k]!.lastHeard = now }
  }

  /// The coordinator was away `seconds` (see `ListeningClock`): that time is not the shards' silence.
  mutating func excuse(_ seconds: Double, now: Date) {
    for k in members.indices where members[k] != nil {
      members[k]!.lastHeard = ListeningClock.excused(members[k]!.lastHeard, by: seconds, now: now)
    }
  }

  /// Shard k is at `version` (after a restore or an update).
  mutating func reached(_ k: Int, version: UInt64) { members[k]?.version = version }

  /// Whether every slice is served and at `version`.
  func allAt(_ version: UInt64) -> Bool { members.allSatisfy { $0?.version == version } }

  /// Shard k's partials for `step`; false when they are not the right count (or another step's).
  mutating func partials(_ k: Int, step: UInt64, _ values: [Double]) -> Bool {
    guard values.count == plan.chunks(k).count, values.allSatisfy(\.isFinite) else { return false }
    if partialsStep != step {
      partialsStep = step
      partials = [:]
    }
    partials[k] = values
    return true
  }

  /// The step's global gradient norm, once every shard's partials are in: added in chunk order,
  /// the norm `igpt train` computes.
  func norm(step: UInt64) -> Double? {
    guard partialsStep == step, partials.count == count else { return nil }
    return Optimizer.norm(partials: (0..<count).flatMap { partials[$0]! })
  }

  /// Where workers reach each shard and the values it holds, in slab order (nil until all are in).
  var endpoints: [Wire.ShardEndpoint]? {
    guard members.allSatisfy({ $0 != nil }) else { return nil }
    return members.enumerated().map { k, m in
      Wire.ShardEndpoint(endpoint: m!.hello.endpoint, lower: plan.elements(k).lowerBound, upper: plan.elements(k).upperBound,
                         publicKey: m!.hello.publicKey)
    }
  }

  /// Why a shard that said hello again mid-run cannot be restored from the coordinator's copy
  /// of the state (nil: it can). Only a copy of the current version restores it, and only
  /// while none of the step's gradient has gone out to be summed: the shards' partial sums of
  /// the step exist nowhere else. `pulledVersion` is nil until the shards are first restored.
  static func whyUnrestorable(pulledVersion: UInt64?, version: UInt64, gradientSent: Bool) -> String? {
    guard let pulled = pulledVersion else { return nil }
    if pulled != version { return "this coordinator holds the state of step \(pulled) only" }
    if gradientSent { return "the gradient of step \(version + 1) it was summing exists nowhere else" }
    return nil
  }

  /// Shards not heard from for longer than `deadAfter` seconds, with the silence.
  func silent(now: Date, deadAfter: Double) -> [(index: Int, seconds: Double)] {
    members.enumerated().compactMap { k, m in
      guard let m, now.timeIntervalSince(m.lastHeard) > deadAfter else { return nil }
      return (k, now.timeIntervalSince(m.lastHeard))
    }
  }
}
