import Foundation

/// How long a process's event loop went without coming round to listen: time it spent stopped,
/// starved of CPU or blocked in a long write, in which it heard nothing and so cannot judge its
/// peers' silence. Each loop asks it before deciding that a peer is gone, and excuses the peers
/// that much (`Membership.excuse`, `ShardRoster.excuse`, the worker's and shard's own lastHeard).
struct ListeningClock {
  private var last: Date

  init(now: Date = Date()) { last = now }

  /// Seconds since the previous call beyond `allowance` (a loop's ordinary time round, such as a
  /// poll's timeout), or 0 when the loop came round in time.
  mutating func away(now: Date, allowance: Double) -> Double {
    defer { last = max(last, now) }
    return max(0, now.timeIntervalSince(last) - allowance)
  }

  /// `lastHeard` moved on by the time the listener was away, but never past `now`.
  static func excused(_ lastHeard: Date, by seconds: Double, now: Date) -> Date {
    seconds > 0 ? min(now, lastHeard.addingTimeInterval(seconds)) : lastHeard
  }
}
