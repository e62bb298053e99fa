/// A problem with input data, as one line that names the file (or setting) and what is wrong.
public struct DataError: Error, CustomStringConvertible, Equatable {
  public let description: String
  public init(_ description: String) { self.description = description }

  /// "<path>: <problem>".
  public static func file(_ path: String, _ problem: String) -> DataError {
    DataError("\(path): \(problem)")
  }
}
