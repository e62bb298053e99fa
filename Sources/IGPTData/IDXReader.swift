import Foundation

/// Reads IDX files (MNIST, Fashion-MNIST): raw or gzip, unsigned bytes, images (n, rows, cols)
/// and labels (n).
public enum IDXReader {
  /// The dimensions and bytes of one IDX file of unsigned bytes.
  public static func read(_ path: String) throws -> (dims: [Int], bytes: Data) {
    guard let raw = FileManager.default.contents(atPath: path) else {
      throw DataError.file(path, "cannot be read (missing or not a file)")
    }
    let data = Gzip.isGzip(raw) ? try Gzip.decompress(raw, path: path) : raw
    guard data.count >= 4 else { throw DataError.file(path, "too short for an IDX header") }
    let b = [UInt8](data.prefix(4))
    guard b[0] == 0, b[1] == 0 else {
      throw DataError.file(path, String(format: "wrong IDX magic number 0x%02x%02x%02x%02x", b[0], b[1], b[2], b[3]))
    }
    guard b[2] == 0x08 else {
      throw DataError.file(path, String(format: "IDX element type 0x%02x is not unsigned byte (0x08)", b[2]))
    }
    let ndim = Int(b[3])
    guard ndim >= 1 && ndim <= 4, data.count >= 4 + 4 * ndim else {
      throw DataError.file(path, "IDX header declares \(ndim) dimensions")
    }
    var dims: [Int] = []
    for d in 0..<ndim {
      let o = data.startIndex + 4 + 4 * d
      dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
    }
    // each dimension is below 2^32: their product can overflow, so it is checked
    let (expected, overflow) = dims.reduce((1, false)) { acc, d in
      let (p, o) = acc.0.multipliedReportingOverflow(by: d)
      return (p, acc.1 || o)
    }
    let body = data.count - 4 - 4 * ndim
    guard !overflow, body == expected else {
      throw DataError.file(path, "IDX data holds \(body) bytes, its header promises \(expected)")
    }
    return (dims, data.suffix(from: data.startIndex + 4 + 4 * ndim))
  }

  /// Images and labels from an images file and a labels file of the same count.
  public static func readSet(images: String, labels: String?) throws -> ImageSet {
    let (dims, bytes) = try read(images)
    guard dims.count == 3 else {
      throw DataError.file(images, "an IDX image file has 3 dimensions, this one has \(dims.count)")
    }
    var labelValues: [Int32] = []
    if let labels {
      let (ldims, lbytes) = try read(labels)
      guard ldims.count == 1 else {
        throw DataError.file(labels, "an IDX label file has 1 dimension, this one has \(ldims.count)")
      }
      guard ldims[0] == dims[0] else {
        throw DataError.file(labels, "\(ldims[0]) labels for \(dims[0]) images in \(images)")
      }
      labelValues = lbytes.map { Int32($0) }
    }
    return ImageSet(width: dims[2], height: dims[1], channels: 1, pixels: [UInt8](bytes), labels: labelValues)
  }

  /// A directory in the MNIST layout: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
  /// t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (test files optional).
  public static func readDirectory(_ dir: String) throws -> SourceDataset {
    func find(_ stem: String) -> String? {
      for name in [stem, stem + ".gz"] {
        let p = (dir as NSString).appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: p) { return p }
      }
      return nil
    }
    guard let trainImages = find("train-images-idx3-ubyte") else {
      throw DataError.file(dir, "no train-images-idx3-ubyte[.gz] (not an IDX dataset directory)")
    }
    let train = try readSet(images: trainImages, labels: find("train-labels-idx1-ubyte"))
    var test: ImageSet?
    if let t = find("t10k-images-idx3-ubyte") {
      test = try readSet(images: t, labels: find("t10k-labels-idx1-ubyte"))
      if test!.width != train.width || test!.height != train.height {
        throw DataError.file(t, "test images are \(test!.width)x\(test!.height), train images \(train.width)x\(train.height)")
      }
    }
    let classes = Set(train.labels).count
    return SourceDataset(format: "idx", source: dir, train: train, test: test, val: nil,
                         classNames: (0..<classes).map { "\($0)" })
  }
}
