import Foundation
import IGPTData

/// Appends one JSON object per line to DIR/metrics.jsonl (flushed per line).
public final class MetricsLog {
  private let handle: FileHandle

  public init(path: String) throws {
    if !FileManager.default.fileExists(atPath: path) {
      FileManager.default.createFile(atPath: path, contents: nil)
    }
    guard let h = FileHandle(forWritingAtPath: path) else { throw DataError.file(path, "cannot open for appending") }
    h.seekToEndOfFile()
    handle = h
  }

  public func append(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
    handle.write(data + Data("\n".utf8))
  }
}
