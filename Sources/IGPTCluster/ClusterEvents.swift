import Foundation
import IGPTTraining

/// What happens in a cluster run, as data: joins, leaves, deaths, stuck workers, re-issued
/// tasks, probe jobs starting and ending, and each step's time split, one JSON object per line
/// in RUN/events.jsonl (`time` in seconds since 1970, `event`, then the event's fields), each
/// also said in the log as a line of text.
final class ClusterEvents {
  let path: String
  private let file: MetricsLog
  private let log: (String) -> Void

  init(runDir: String, log: @escaping (String) -> Void) throws {
    path = (runDir as NSString).appendingPathComponent("events.jsonl")
    file = try MetricsLog(path: path)
    self.log = log
  }

  /// Records an event and logs `line` (nil: the event is data only).
  func record(_ event: String, _ fields: [String: Any] = [:], line: String? = nil) {
    var object = fields
    object["event"] = event
    object["time"] = (Date().timeIntervalSince1970 * 1000).rounded() / 1000
    file.append(object)
    if let line { log(line) }
  }

  /// A line for the log alone.
  func say(_ line: String) { log(line) }
}
