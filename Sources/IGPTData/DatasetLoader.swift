import Foundation

/// Finds and reads a dataset named on the command line: `fashion-mnist` (Debian's
/// dataset-fashion-mnist package) or a path whose format is recognised from its contents.
public enum DatasetLoader {
  public static let fashionMNISTPath = "/usr/share/datasets/fashion-mnist"

  /// Formats a path can be read as.
  public enum Format: String, CaseIterable, Sendable {
    case idx, cifar, folder
  }

  /// Where a dataset name points.
  public static func resolve(_ dataset: String) -> String {
    dataset == "fashion-mnist" ? fashionMNISTPath : dataset
  }

  /// The format of a dataset directory, from the files in it.
  public static func detect(_ path: String) throws -> Format {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw DataError.file(path, "does not exist")
    }
    guard isDir.boolValue else { throw DataError.file(path, "is a file; --dataset takes a directory") }
    let names = Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
    if names.contains("train-images-idx3-ubyte") || names.contains("train-images-idx3-ubyte.gz") { return .idx }
    if names.contains("data_batch_1.bin") || names.contains("train.bin") { return .cifar }
    return .folder
  }

  /// Reads the dataset (format detected unless given).
  public static func load(_ dataset: String, format: Format? = nil,
                          progress: ((Int, Int) -> Void)? = nil) throws -> SourceDataset {
    let path = resolve(dataset)
    if dataset == "fashion-mnist" && !FileManager.default.fileExists(atPath: path) {
      throw DataError.file(path, "missing: install Debian's dataset-fashion-mnist (make setup does)")
    }
    let f = try format ?? detect(path)
    switch f {
    case .idx: return try IDXReader.readDirectory(path)
    case .cifar: return try CIFARReader.readDirectory(path)
    case .folder: return try ImageFolderReader.readDirectory(path, progress: progress)
    }
  }
}
