import Foundation

/// Reads and writes safetensors files (an 8-byte little-endian header length, a JSON header of
/// name -> dtype, shape, data_offsets, optional string `__metadata__`, then raw little-endian data).
public enum Safetensors {
  /// One tensor to write: F32 data with its shape.
  public struct Entry {
    public let name: String
    public let shape: [Int]
    public let data: UnsafeBufferPointer<Float>
    public init(name: String, shape: [Int], data: UnsafeBufferPointer<Float>) {
      self.name = name; self.shape = shape; self.data = data
    }
  }

  /// The file's first bytes for these entries: the 8-byte header length and the JSON header
  /// (padded with spaces to a multiple of 8). The entries' data follows in order.
  public static func header(_ entries: [Entry], metadata: [String: String]) throws -> Data {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    for e in entries {
      precondition(e.shape.reduce(1, *) == e.data.count, "shape of \(e.name) does not match its data")
      let n = e.data.count * 4
      header[e.name] = ["dtype": "F32", "shape": e.shape, "data_offsets": [offset, offset + n]]
      offset += n
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces to align the data
    var out = Data(capacity: 8 + json.count)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    return out
  }

  /// The bytes of a safetensors file holding entries (in order) and metadata (small files;
  /// checkpoints stream `header` and the entries' data to disk instead).
  public static func encode(_ entries: [Entry], metadata: [String: String]) throws -> Data {
    var out = try header(entries, metadata: metadata)
    for e in entries { out.append(UnsafeBufferPointer(start: e.data.baseAddress, count: e.data.count)) }
    return out
  }

  /// Where each tensor lies in a file's bytes, and the metadata: parsed without copying data.
  public struct Index {
    /// Name -> shape and the byte range of its F32 data within the whole file.
    public var tensors: [String: (shape: [Int], bytes: Range<Int>)]
    public var metadata: [String: String]

    /// Copies one tensor's values out of the file's bytes (count floats) into dst.
    public func copy(_ name: String, from file: UnsafeRawBufferPointer, to dst: UnsafeMutablePointer<Float>) {
      let r = tensors[name]!.bytes
      UnsafeMutableRawPointer(dst).copyMemory(from: file.baseAddress! + r.lowerBound, byteCount: r.count)
    }
  }

  /// Parses the header of a safetensors file's bytes, checking that every tensor is F32 and
  /// lies inside the file; throws a one-line error for anything malformed.
  public static func index(_ raw: UnsafeRawBufferPointer, name: String = "safetensors file") throws -> Index {
    func fail(_ why: String) -> Error { SafetensorsError("\(name): \(why)") }
    guard raw.count >= 8 else { throw fail("shorter than its 8-byte header length") }
    let n = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
    guard n <= UInt64(raw.count - 8) else { throw fail("header length \(n) exceeds the file") }
    let start = 8 + Int(n)
    let json = Data(UnsafeRawBufferPointer(rebasing: raw[8..<start]))
    guard let header = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
      throw fail("header is not a JSON object")
    }
    var index = Index(tensors: [:], metadata: [:])
    let bodyCount = raw.count - start
    for (key, value) in header {
      if key == "__metadata__" {
        guard let m = value as? [String: String] else { throw fail("__metadata__ is not string to string") }
        index.metadata = m
        continue
      }
      guard let t = value as? [String: Any], let dtype = t["dtype"] as? String,
        let shape = t["shape"] as? [Int], let offsets = t["data_offsets"] as? [Int], offsets.count == 2
      else { throw fail("tensor \(key) has a malformed entry") }
      guard dtype == "F32" else { throw fail("tensor \(key) is \(dtype); only F32 is supported") }
      // Checked arithmetic throughout: release builds do not trap on overflow, and a hostile
      // header must not wrap its way past these checks.
      var count = 1
      for d in shape {
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        guard d >= 0, !overflow else { throw fail("tensor \(key) has an impossible shape \(shape)") }
        count = p
      }
      let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
      guard !overflow, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bodyCount,
        offsets[1] - offsets[0] == bytes
      else {
        throw fail("tensor \(key) has data offsets \(offsets) that do not fit its shape or the file")
      }
      index.tensors[key] = (shape, (start + offsets[0])..<(start + offsets[1]))
    }
    return index
  }

  /// A parsed file: tensors as Float arrays (F32 only) and the metadata.
  public struct File {
    public var tensors: [String: (shape: [Int], values: [Float])]
    public var metadata: [String: String]
  }

  /// Parses safetensors bytes into arrays; throws a one-line error for anything malformed.
  public static func decode(_ data: Data, name: String = "safetensors file") throws -> File {
    try data.withUnsafeBytes { raw in
      let index = try Self.index(raw, name: name)
      var file = File(tensors: [:], metadata: index.metadata)
      for (key, t) in index.tensors {
        var values = [Float](repeating: 0, count: t.bytes.count / 4)
        values.withUnsafeMutableBufferPointer { index.copy(key, from: raw, to: $0.baseAddress!) }
        file.tensors[key] = (t.shape, values)
      }
      return file
    }
  }
}

/// A safetensors file that cannot be read, with a one-line reason.
public struct SafetensorsError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
