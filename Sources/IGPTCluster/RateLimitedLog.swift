import Foundation

/// Logs bad-input reports without letting a flood of them drown the log: the first few lines
/// go through, then at most one per interval, saying how many were suppressed.
final class RateLimitedLog {
  private let log: (String) -> Void
  private let burst: Int
  private let interval: Double
  private var sent = 0
  private var suppressed = 0
  private var last = Date.distantPast
  private(set) var total = 0

  init(burst: Int = 5, interval: Double = 5, log: @escaping (String) -> Void) {
    self.log = log
    self.burst = burst
    self.interval = interval
  }

  func note(_ line: String) {
    total += 1
    let now = Date()
    if sent < burst || now.timeIntervalSince(last) >= interval {
      log(suppressed > 0 ? "\(line) (\(suppressed) similar messages suppressed)" : line)
      sent += 1
      suppressed = 0
      last = now
    } else {
      suppressed += 1
    }
  }
}
