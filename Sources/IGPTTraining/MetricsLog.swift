import Foundation
import IGPTData

/// Appends one JSON object per line to DIR/metrics.jsonl (flushed per line), and each line's
/// numbers as TensorBoard scalars at its step when given a `TensorBoardLog`.
public final class MetricsLog {
  private let handle: FileHandle
  public let tensorboard: TensorBoardLog?

  public init(path: String, tensorboard: TensorBoardLog? = nil) throws {
    self.tensorboard = tensorboard
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
    if let tensorboard, let step = object["step"] as? Int {
      var scalars: [String: Double] = [:]
      for (key, value) in object where key != "step" {
        if let d = value as? Double { scalars[key] = d } else if let i = value as? Int { scalars[key] = Double(i) }
      }
      tensorboard.scalars(step: step, scalars)
    }
  }
}
