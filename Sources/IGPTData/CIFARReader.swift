import Foundation

/// Reads CIFAR-10 / CIFAR-100 binary batches: records of label byte(s) then 3072 bytes of
/// 32x32 pixels as R, G and B planes.
public enum CIFARReader {
  /// Images (converted to interleaved RGB) and labels from one batch file.
  /// labelBytes: 1 for CIFAR-10, 2 for CIFAR-100 (coarse, fine: the fine label is used).
  public static func readBatch(_ path: String, labelBytes: Int) throws -> ImageSet {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw DataError.file(path, "cannot be read (missing or not a file)")
    }
    let record = labelBytes + 3072
    guard data.count > 0, data.count % record == 0 else {
      throw DataError.file(path, "\(data.count) bytes is not a whole number of \(record)-byte CIFAR records")
    }
    let n = data.count / record
    var pixels = [UInt8](repeating: 0, count: n * 3072)
    var labels = [Int32](repeating: 0, count: n)
    data.withUnsafeBytes { (src: UnsafeRawBufferPointer) in
      let s = src.bindMemory(to: UInt8.self)
      for i in 0..<n {
        let r = i * record
        labels[i] = Int32(s[r + labelBytes - 1])
        for p in 0..<1024 {
          for c in 0..<3 { pixels[i * 3072 + p * 3 + c] = s[r + labelBytes + c * 1024 + p] }
        }
      }
    }
    return ImageSet(width: 32, height: 32, channels: 3, pixels: pixels, labels: labels)
  }

  /// Concatenates image sets of one shape.
  static func concatenate(_ sets: [ImageSet]) -> ImageSet {
    var out = sets[0]
    for s in sets.dropFirst() {
      out.pixels += s.pixels
      out.labels += s.labels
    }
    return out
  }

  /// A CIFAR-10 directory (data_batch_1..5.bin, test_batch.bin, batches.meta.txt) or a
  /// CIFAR-100 one (train.bin, test.bin, fine_label_names.txt).
  public static func readDirectory(_ dir: String) throws -> SourceDataset {
    let fm = FileManager.default
    func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
    func names(_ file: String, count: Int) -> [String] {
      if let text = try? String(contentsOfFile: path(file), encoding: .utf8) {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if lines.count == count { return lines }
      }
      return (0..<count).map { "\($0)" }
    }
    if fm.fileExists(atPath: path("data_batch_1.bin")) {
      var batches: [ImageSet] = []
      for i in 1...5 where fm.fileExists(atPath: path("data_batch_\(i).bin")) {
        batches.append(try readBatch(path("data_batch_\(i).bin"), labelBytes: 1))
      }
      let test = fm.fileExists(atPath: path("test_batch.bin")) ? try readBatch(path("test_batch.bin"), labelBytes: 1) : nil
      return SourceDataset(format: "cifar10", source: dir, train: concatenate(batches), test: test,
                           val: nil, classNames: names("batches.meta.txt", count: 10))
    }
    if fm.fileExists(atPath: path("train.bin")) {
      let train = try readBatch(path("train.bin"), labelBytes: 2)
      let test = fm.fileExists(atPath: path("test.bin")) ? try readBatch(path("test.bin"), labelBytes: 2) : nil
      return SourceDataset(format: "cifar100", source: dir, train: train, test: test, val: nil,
                           classNames: names("fine_label_names.txt", count: 100))
    }
    throw DataError.file(dir, "no data_batch_1.bin or train.bin (not a CIFAR binary directory)")
  }
}
