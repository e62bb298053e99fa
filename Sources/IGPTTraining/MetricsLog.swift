import Foundation
import IGPTData

/// Appends one JSON object per line to a JSON-lines file (flushed per line), and each line's
/// numbers as TensorBoard scalars at its step when given a `TensorBoardLog`. Opened for a run
/// resumed at step s, it first drops the records of steps after s (written before the run was
/// interrupted, after its last checkpoint): the resumed run records them again, once.
public final class MetricsLog {
  private let handle: FileHandle
  public let tensorboard: TensorBoardLog?

  public init(path: String, resumingAt step: Int? = nil, tensorboard: TensorBoardLog? = nil) throws {
    self.tensorboard = tensorboard
    if !FileManager.default.fileExists(atPath: path) {
      FileManager.default.createFile(atPath: path, contents: nil)
    }
    guard let h = FileHandle(forUpdatingAtPath: path) else { throw DataError.file(path, "cannot open for appending") }
    if let step, let old = FileManager.default.contents(atPath: path) {
      try h.truncate(atOffset: UInt64(Self.keptPrefix(old, throughStep: step)))
    }
    h.seekToEndOfFile()
    handle = h
  }

  /// Bytes of the whole lines before the first record of a step after `step` (a torn last
  /// line is dropped too).
  public static func keptPrefix(_ data: Data, throughStep step: Int) -> Int {
    var keep = 0
    var start = data.startIndex
    while let nl = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
      let line = data[start..<nl]
      let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any]
      if let s = object?["step"] as? Int, s > step { break }
      keep = nl + 1 - data.startIndex
      start = nl + 1
    }
    return keep
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
