import Foundation

/// Appends one JSON object per line to DIR/metrics.jsonl (flushed per line).
final class MetricsLog {
  private let handle: FileHandle

  init(path: String) throws {
    if !FileManager.default.fileExists(atPath: path) {
      FileManager.default.createFile(atPath: path, contents: nil)
    }
    guard let h = FileHandle(forWritingAtPath: path) else { throw CleanError("\(path): cannot open for appending") }
    h.seekToEndOfFile()
    handle = h
  }

  func append(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
    handle.write(data + Data("\n".utf8))
  }
}

/// An error printed as its message alone.
struct CleanError: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}
