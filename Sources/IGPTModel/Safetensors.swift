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

  /// The bytes of a safetensors file holding entries (in order) and metadata.
  public static func encode(_ entries: [Entry], metadata: [String: String]) throws -> Data {
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
    var out = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    for e in entries { out.append(UnsafeBufferPointer(start: e.data.baseAddress, count: e.data.count)) }
    return out
  }

  /// A parsed file: tensors as Float arrays (F32 only) and the metadata.
  public struct File {
    public var tensors: [String: (shape: [Int], values: [Float])]
    public var metadata: [String: String]
  }

  /// Parses safetensors bytes; throws a one-line error for anything malformed.
  public static func decode(_ data: Data, name: String = "safetensors file") throws -> File {
    func fail(_ why: String) -> Error { SafetensorsError("\(name): \(why)") }
    guard data.count >= 8 else { throw fail("shorter than its 8-byte header length") }
    let n = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    guard n <= UInt64(data.count - 8) else { throw fail("header length \(n) exceeds the file") }
    let body = data.dropFirst(8 + Int(n))
    guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n))))
      as? [String: Any]
    else { throw fail("header is not a JSON object") }
    var file = File(tensors: [:], metadata: [:])
    for (key, value) in header {
      if key == "__metadata__" {
        guard let m = value as? [String: String] else { throw fail("__metadata__ is not string to string") }
        file.metadata = m
        continue
      }
      guard let t = value as? [String: Any], let dtype = t["dtype"] as? String,
        let shape = t["shape"] as? [Int], let offsets = t["data_offsets"] as? [Int], offsets.count == 2
      else { throw fail("tensor \(key) has a malformed entry") }
      guard dtype == "F32" else { throw fail("tensor \(key) is \(dtype); only F32 is supported") }
      let count = shape.reduce(1, *)
      guard offsets[0] >= 0, offsets[1] - offsets[0] == count * 4, offsets[1] <= body.count else {
        throw fail("tensor \(key) has data offsets \(offsets) that do not fit its shape or the file")
      }
      var values = [Float](repeating: 0, count: count)
      values.withUnsafeMutableBytes { dst in
        body.withUnsafeBytes { src in
          dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offsets[0]..<offsets[1]]))
        }
      }
      file.tensors[key] = (shape, values)
    }
    return file
  }
}

/// A safetensors file that cannot be read, with a one-line reason.
public struct SafetensorsError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
