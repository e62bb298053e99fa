import Foundation
import Testing
@testable import IGPTCluster

/// The scheduling state machine on its own: events in, assignments out, no sockets.
@Suite struct SchedulerTests {
  let a = Data("a".utf8), b = Data("b".utf8), c = Data("c".utf8)
  let t0 = Date(timeIntervalSince1970: 1000)

  /// Workers a and b (eligible, credit 2) and training tasks 1...4.
  func started(_ ids: [UInt64] = [1, 2, 3, 4], workers: [Data]? = nil) -> Scheduler {
    var s = Scheduler()
    for w in workers ?? [a, b] {
      s.join(w)
      s.markEligible(w)
      s.ready(w, credit: 2, holding: [])
    }
    s.replace(.training, with: ids)
    return s
  }

  func held(_ s: Scheduler, _ w: Data) -> Set<UInt64> { s.slots[w]?.held ?? [] }

  @Test func tasksGoOutInOrderOneRoundAtATimeWithinCredit() {
    var s = started()
    let out = s.assign(now: t0, probes: false)
    #expect(out.map(\.task) == [1, 2, 3, 4])
    #expect(Set(out.prefix(2).map(\.worker)) == [a, b])  // a round gives each worker one
    #expect(held(s, a).count == 2 && held(s, b).count == 2)
    #expect(s.assign(now: t0, probes: false).isEmpty)  // no credit left
    #expect(out.map(\.worker) == [a, b, a, b])  // least recently served first, ties by id
  }

  @Test func noWorkBeforeTheNumericsAreChecked() {
    var s = Scheduler()
    s.join(a)
    s.ready(a, credit: 2, holding: [])
    s.replace(.training, with: [1])
    #expect(s.assign(now: t0, probes: false).isEmpty)
    s.markEligible(a)
    #expect(s.assign(now: t0, probes: false) == [.init(worker: a, task: 1)])
  }

  @Test func aWorkerDyingHoldingTasksPutsThemBackFirst() {
    var s = started()
    _ = s.assign(now: t0, probes: false)
    let lost = held(s, a)
    #expect(s.leave(a).sorted() == lost.sorted())
    #expect(s.slots[a] == nil)
    _ = s.complete(b, task: held(s, b).first!)  // b gets one credit back
    let again = s.assign(now: t0, probes: false)
    #expect(again.count == 1 && lost.contains(again[0].task) && again[0].worker == b)
    #expect(s.pending(.training) == 3)
  }

  @Test func aReadyThatNoLongerHoldsATaskRequeuesIt() {
    var s = started([1, 2], workers: [a])
    _ = s.assign(now: t0, probes: false)
    #expect(s.ready(a, credit: 1, holding: [2]) == [1])
    #expect(held(s, a) == [2])
    #expect(s.assign(now: t0, probes: false) == [.init(worker: a, task: 1)])
  }

  /// A stuck worker keeps heartbeating: after the limit its task also goes to another worker
  /// (never back to itself), it gets nothing new, and the second result is a duplicate.
  @Test func aStuckWorkersTaskIsReissuedOnceToAnother() {
    var s = started([1, 2], workers: [a])
    _ = s.assign(now: t0, probes: false)
    #expect(s.expire(now: t0.addingTimeInterval(5), limit: 10).isEmpty)
    #expect(s.expire(now: t0.addingTimeInterval(11), limit: 10) == [1, 2])
    #expect(s.expire(now: t0.addingTimeInterval(12), limit: 10).isEmpty)  // once per hand-out
    s.ready(a, credit: 2, holding: [1, 2])
    #expect(s.assign(now: t0.addingTimeInterval(12), probes: false).isEmpty)  // a holds them and is suspect
    s.join(b)
    s.markEligible(b)
    s.ready(b, credit: 2, holding: [])
    let out = s.assign(now: t0.addingTimeInterval(12), probes: false)
    #expect(out.map(\.task) == [1, 2] && out.allSatisfy { $0.worker == b })
    #expect(s.complete(b, task: 1) == .first)
    #expect(s.complete(a, task: 1) == .duplicate)
    #expect(s.slots[a]?.suspect == false)  // it answered: it may work again
  }

  @Test func staleAndUnknownResultsChangeNothingButCredit() {
    var s = started([1, 2], workers: [a])
    _ = s.assign(now: t0, probes: false)
    s.replace(.training, with: [3])  // the next phase
    #expect(held(s, a).isEmpty)
    #expect(s.complete(a, task: 1) == .unknown)
    #expect(s.slots[a]?.credit == 1)
    #expect(s.complete(a, task: 99) == .unknown)
    #expect(s.pending(.training) == 1)
  }

  @Test func aWorkerRejoiningStartsAfresh() {
    var s = started([1, 2], workers: [a])
    _ = s.assign(now: t0, probes: false)
    s.leave(a)
    s.join(a)
    #expect(s.slots[a] == Scheduler.Slot())
    s.markEligible(a)
    s.ready(a, credit: 2, holding: [])
    #expect(Set(s.assign(now: t0, probes: false).map(\.task)) == [1, 2])
  }

  @Test func unusableAndRefusedResultsAreComputedAgain() {
    var s = started([1, 2, 3], workers: [a])
    _ = s.assign(now: t0, probes: false)
    #expect(s.complete(a, task: 1) == .first)
    #expect(s.complete(a, task: 2) == .first)
    s.retry([1])
    s.retry([2], atBack: true)
    #expect(s.queues[.training] == [1, 3, 2])
    #expect(!s.allDone(.training) && s.pending(.training) == 3)
  }

  /// A probe job started and ended mid-step: its tasks go out only when allowed and after the
  /// training tasks, and what workers held of it is forgotten when it ends.
  @Test func aProbeJobStartingAndEndingMidStep() {
    var s = started([1, 2], workers: [a])
    s.ready(a, credit: 4, holding: [])
    s.replace(.probe, with: [100, 101, 102])
    #expect(s.assign(now: t0, probes: false).map(\.task) == [1, 2])
    #expect(s.assign(now: t0, probes: true).map(\.task) == [100])  // one probe task per worker per call
    #expect(s.assign(now: t0, probes: true).map(\.task) == [101])
    #expect(s.complete(a, task: 100) == .first)
    s.replace(.probe, with: [])  // the job ended
    #expect(held(s, a) == [1, 2])
    #expect(s.complete(a, task: 101) == .unknown)
    #expect(s.assign(now: t0, probes: true).isEmpty)
    #expect(s.allDone(.probe) && !s.allDone(.training))
    #expect(!s.anySent(.probe))
  }
}
