import Foundation
import Testing
@testable import IGPTCluster
@testable import IGPTTraining

/// A process's own stall is not its peers' silence: decided without sockets.
@Suite struct ListeningClockTests {
  @Test func onlyTheTimeBeyondALoopsTurnCountsAsAway() {
    let t0 = Date(timeIntervalSinceReferenceDate: 1000)
    var clock = ListeningClock(now: t0)
    #expect(clock.away(now: t0.addingTimeInterval(0.1), allowance: 0.2) == 0)
    #expect(abs(clock.away(now: t0.addingTimeInterval(18.1), allowance: 0.2) - 17.8) < 1e-9)
    #expect(clock.away(now: t0.addingTimeInterval(18.2), allowance: 0.2) == 0, "counted once")
    // a clock that steps back excuses nothing and keeps its place
    #expect(clock.away(now: t0, allowance: 0.2) == 0)
    #expect(clock.away(now: t0.addingTimeInterval(18.3), allowance: 0.2) == 0)
    // excused, but never into the future
    #expect(ListeningClock.excused(t0, by: 5, now: t0.addingTimeInterval(3)) == t0.addingTimeInterval(3))
    #expect(ListeningClock.excused(t0, by: 2, now: t0.addingTimeInterval(3)) == t0.addingTimeInterval(2))
    #expect(ListeningClock.excused(t0, by: 0, now: t0.addingTimeInterval(3)) == t0)
  }

  /// The CI failure this rule fixes: the coordinator stalled 18 s; one shard's heartbeats were
  /// not yet read when it judged silence, and it stopped the run for a shard that was alive.
  @Test func aStalledCoordinatorExcusesItsShardsAndWorkersButStillFindsTheDead() throws {
    let t0 = Date(timeIntervalSinceReferenceDate: 1000)
    var roster = ShardRoster(plan: try ShardPlan(total: 100, shards: 2))
    _ = roster.admit(Data([1]), ShardRosterTests.hello("a"), now: t0)
    _ = roster.admit(Data([2]), ShardRosterTests.hello("bb"), now: t0)
    var members = Membership(config: try RunConfig.parse("train: {lr: 0.01}"))
    members.join(Data([9]), MembershipTests.hello(), address: "w", otherNumerics: nil, now: t0)
    let woke = t0.addingTimeInterval(18)
    #expect(roster.silent(now: woke, deadAfter: 1).count == 2 && members.silent(now: woke, deadAfter: 1).count == 1, "without the excuse")
    roster.excuse(17.8, now: woke)
    members.excuse(17.8, now: woke)
    #expect(roster.silent(now: woke, deadAfter: 1).isEmpty && members.silent(now: woke, deadAfter: 1).isEmpty)
    // one shard speaks after the stall, the other never does: it is found a window later
    roster.heard(Data([1]), now: woke.addingTimeInterval(0.5))
    #expect(roster.silent(now: woke.addingTimeInterval(1.5), deadAfter: 1).map(\.index) == [1])
  }
}
