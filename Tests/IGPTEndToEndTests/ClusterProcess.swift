import Foundation

/// A background `igpt` process (coordinator or worker) whose stderr goes to a log file, so a
/// test can wait on its output, kill it, and show its log when something fails.
final class ClusterProcess {
  let process = Process()
  let logPath: String
  let name: String

  /// `environment` edits the inherited environment (a nil value unsets the variable).
  init(_ name: String, _ args: [String], logDir: String, environment edits: [String: String?] = [:]) throws {
    self.name = name
    if !edits.isEmpty {
      var env = ProcessInfo.processInfo.environment
      for (k, v) in edits { env[k] = v }
      process.environment = env
    }
    logPath = "\(logDir)/\(name).log"
    FileManager.default.createFile(atPath: logPath, contents: nil)
    process.executableURL = IGPTBinary.url
    process.arguments = args
    // One handle for both streams: two would each write from offset 0 over the other.
    let handle = FileHandle(forWritingAtPath: logPath)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
  }

  var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
  var pid: Int32 { process.processIdentifier }

  func kill(_ signal: Int32 = SIGKILL) {
    if process.isRunning { Foundation.kill(pid, signal) }
  }

  /// Waits for the process to end; nil on timeout (then it is killed).
  @discardableResult
  func wait(timeout: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
      kill()
      process.waitUntilExit()
      return nil
    }
    return process.terminationStatus
  }

  /// Waits until the condition holds (polling), false on timeout.
  static func waitFor(timeout: Double, poll: Double = 0.02, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if condition() { return true }
      usleep(UInt32(poll * 1e6))
    }
    return condition()
  }

  /// The highest step logged to a run's metrics.jsonl so far.
  /// The JSON objects of a JSON-lines file (none when it is missing).
  static func records(_ path: String) -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
  }

  /// RUN/metrics.jsonl's step records (those with a training loss).
  static func stepRecords(runDir: String) -> [[String: Any]] {
    records(runDir + "/metrics.jsonl").filter { $0["loss"] != nil }
  }

  /// RUN/events.jsonl's events of one kind.
  static func events(runDir: String, _ kind: String) -> [[String: Any]] {
    records(runDir + "/events.jsonl").filter { $0["event"] as? String == kind }
  }

  static func loggedStep(runDir: String) -> Int {
    guard let text = try? String(contentsOfFile: runDir + "/metrics.jsonl", encoding: .utf8) else { return 0 }
    return text.split(separator: "\n").compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int
    }.max() ?? 0
  }
}
