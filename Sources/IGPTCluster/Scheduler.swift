import Foundation

/// Which worker computes which task: a state machine that takes events (joins, readies,
/// results, losses, the clock) and returns assignments, with no sockets and no clock of its own.
///
/// Gradient blocks, validation microbatches and probe feature microbatches are all tasks: a
/// task waits in its pool's queue, goes to a worker with credit that does not already hold it
/// (least recently served first), and is done when its first usable result is in. A task held
/// too long is handed to a second worker once, and its holder gets nothing new until it returns
/// a result; a worker that leaves or forgets a task puts it back at the front of the queue.
/// Training tasks go out before probe tasks.
struct Scheduler {
  typealias WorkerID = Data

  enum Pool: Sendable { case training, probe }

  struct Task: Equatable {
    let id: UInt64
    let pool: Pool
    var sentAt: Date?
    /// Handed to a second worker after it was out too long (at most once per hand-out).
    var reissued = false
    var done = false
  }

  /// What the scheduler knows of one worker.
  struct Slot: Equatable {
    /// Tasks it can take now.
    var credit = 0
    /// Tasks it was sent and has not returned.
    var held: Set<UInt64> = []
    var lastAssigned = Date.distantPast
    /// It gets work only once its numerics are checked.
    var eligible = false
    /// It holds a task that was out too long (stuck?): no new work until it returns a result.
    var suspect = false
  }

  /// A task handed to a worker (the caller sends it; a failed send is a `leave`).
  struct Assignment: Equatable {
    let worker: WorkerID
    let task: UInt64
  }

  /// What a result was to the scheduler.
  enum Completion: Equatable { case first, duplicate, unknown }

  /// The most tasks a worker may hold (one computing, one at hand).
  static let maxCredit = 4

  private(set) var tasks: [UInt64: Task] = [:]
  private(set) var queues: [Pool: [UInt64]] = [.training: [], .probe: []]
  private(set) var slots: [WorkerID: Slot] = [:]
  /// Pools a task went out from since they were last replaced.
  private var sentFrom: Set<Pool> = []

  // MARK: - Tasks

  /// Replaces a pool's tasks (a new phase, a new probe job): what workers held of the old ones
  /// is forgotten.
  mutating func replace(_ pool: Pool, with ids: [UInt64]) {
    for (id, t) in tasks where t.pool == pool { tasks[id] = nil }
    for w in slots.keys { slots[w]!.held = slots[w]!.held.filter { tasks[$0] != nil } }
    for id in ids { tasks[id] = Task(id: id, pool: pool) }
    sentFrom.remove(pool)
    queues[pool] = ids
  }

  /// Tasks of a pool not done yet (queued or out).
  func pending(_ pool: Pool) -> Int { tasks.values.filter { $0.pool == pool && !$0.done }.count }
  /// Whether any task of the pool was handed out.
  func anySent(_ pool: Pool) -> Bool { sentFrom.contains(pool) }
  func allDone(_ pool: Pool) -> Bool { !tasks.values.contains { $0.pool == pool && !$0.done } }

  /// A result that proved unusable, or whose sum was evicted: to be computed again, at the
  /// front of the queue (`atBack` for work refused for lack of room, which can only wait).
  mutating func retry(_ ids: [UInt64], atBack: Bool = false) {
    var back: [UInt64] = []
    for id in ids where tasks[id] != nil {
      tasks[id]!.done = false
      tasks[id]!.reissued = false
      tasks[id]!.sentAt = nil
      back.append(id)
    }
    for pool in [Pool.training, .probe] {
      let mine = back.filter { tasks[$0]!.pool == pool }
      queues[pool]!.removeAll { mine.contains($0) }
      if atBack { queues[pool]!.append(contentsOf: mine) } else { queues[pool]!.insert(contentsOf: mine, at: 0) }
    }
  }

  // MARK: - Workers

  mutating func join(_ w: WorkerID) { slots[w] = Slot() }

  mutating func markEligible(_ w: WorkerID) { slots[w]?.eligible = true }

  /// A worker gone: the tasks it held and nobody finished go back to the front of the queue.
  @discardableResult
  mutating func leave(_ w: WorkerID) -> [UInt64] {
    guard let slot = slots.removeValue(forKey: w) else { return [] }
    return requeueLost(slot.held)
  }

  /// A worker's ready: its credit, and which tasks it still holds (any others it lost).
  @discardableResult
  mutating func ready(_ w: WorkerID, credit: Int, holding: Set<UInt64>) -> [UInt64] {
    guard var slot = slots[w] else { return [] }
    let lost = slot.held.subtracting(holding)
    slot.held.formIntersection(holding)
    slot.credit = max(0, min(credit, Self.maxCredit))
    slots[w] = slot
    return requeueLost(lost)
  }

  private mutating func requeueLost(_ ids: Set<UInt64>) -> [UInt64] {
    let back = ids.filter { tasks[$0].map { !$0.done } ?? false }.sorted()
    for pool in [Pool.training, .probe] {
      let mine = back.filter { tasks[$0]!.pool == pool && !queues[pool]!.contains($0) }
      queues[pool]!.insert(contentsOf: mine, at: 0)
    }
    return back
  }

  /// A result from a worker: its credit comes back; the first result of a task makes it done.
  mutating func complete(_ w: WorkerID, task id: UInt64) -> Completion {
    if slots[w] != nil {
      slots[w]!.credit = min(slots[w]!.credit + 1, Self.maxCredit)
      slots[w]!.held.remove(id)
      slots[w]!.suspect = false
    }
    guard let t = tasks[id] else { return .unknown }
    guard !t.done else { return .duplicate }
    tasks[id]!.done = true
    return .first
  }

  // MARK: - Time and assignment

  /// Tasks out longer than `limit`: also handed to another worker (once per hand-out).
  mutating func expire(now: Date, limit: Double) -> [UInt64] {
    let late = tasks.values.filter { t in
      !t.done && !t.reissued && t.sentAt.map { now.timeIntervalSince($0) > limit } == true
    }.map(\.id).sorted()
    for w in slots.keys where !slots[w]!.held.isDisjoint(with: late) { slots[w]!.suspect = true }
    for id in late { tasks[id]!.reissued = true }
    for pool in [Pool.training, .probe] {
      let mine = late.filter { tasks[$0]!.pool == pool }
      queues[pool]!.removeAll { mine.contains($0) }
      queues[pool]!.insert(contentsOf: mine, at: 0)
    }
    return late
  }

  /// Hands out queued tasks: training first, a round at a time (one task per worker with
  /// credit, least recently served first), then probe tasks when `probes` allows.
  mutating func assign(now: Date, probes: Bool) -> [Assignment] {
    var out = rounds(.training, now: now, oneRound: false)
    if probes { out += rounds(.probe, now: now, oneRound: true) }
    return out
  }

  private mutating func rounds(_ pool: Pool, now: Date, oneRound: Bool) -> [Assignment] {
    var out: [Assignment] = []
    while true {
      queues[pool]!.removeAll { tasks[$0]?.done ?? true }
      guard !queues[pool]!.isEmpty else { return out }
      let open = slots.filter { $0.value.credit > 0 && $0.value.eligible && !$0.value.suspect }
        .sorted { a, b in
          a.value.lastAssigned != b.value.lastAssigned ? a.value.lastAssigned < b.value.lastAssigned : a.key.lexicographicallyPrecedes(b.key)
        }.map(\.key)
      var sent = false
      for w in open {
        // never hand a task back to the worker still holding it (it is stuck there)
        guard let pos = queues[pool]!.firstIndex(where: { !slots[w]!.held.contains($0) }) else { continue }
        let id = queues[pool]!.remove(at: pos)
        slots[w]!.held.insert(id)
        slots[w]!.credit -= 1
        slots[w]!.lastAssigned = now
        tasks[id]!.sentAt = now
        tasks[id]!.reissued = false  // out again: may be re-issued once more if this holder stalls too
        out.append(Assignment(worker: w, task: id))
        sentFrom.insert(pool)
        sent = true
      }
      if !sent || oneRound { return out }
    }
  }
}
