import Foundation

/// Minimal NumPy .npy (format 1.0, C order, little-endian) for integer token batches and masks.
public enum Npy {
  /// A .npy file's bytes for an int32 array of the given shape.
  public static func encode(int32 values: [Int32], shape: [Int]) -> Data {
    encode(descr: "<i4", shape: shape, body: values.withUnsafeBytes { Data($0) })
  }

  /// A .npy file's bytes for a float32 array of the given shape.
  public static func encode(float32 values: [Float], shape: [Int]) -> Data {
    encode(descr: "<f4", shape: shape, body: values.withUnsafeBytes { Data($0) })
  }

  /// A .npy file's bytes for a uint8 array of the given shape.
  public static func encode(uint8 values: [UInt8], shape: [Int]) -> Data {
    encode(descr: "|u1", shape: shape, body: Data(values))
  }

  private static func encode(descr: String, shape: [Int], body: Data) -> Data {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
    // magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    let n = UInt16(header.utf8.count)
    out.append(contentsOf: [UInt8(n & 0xff), UInt8(n >> 8)])
    out.append(contentsOf: Array(header.utf8))
    out.append(body)
    return out
  }

  /// A parsed array: its dtype string, shape and raw little-endian body.
  public struct Parsed {
    public let descr: String
    public let shape: [Int]
    public let body: Data
  }

  /// A float array read from any float or integer .npy.
  public struct FloatArray {
    public let shape: [Int]
    public let values: [Float]
  }

  /// Parses a .npy (versions 1-3, C order); throws NpyError with a one-line reason.
  public static func decode(_ data: Data) throws -> Parsed {
    let bytes = [UInt8](data.prefix(12))
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
      throw NpyError("not a .npy file (no \\x93NUMPY magic)")
    }
    let major = bytes[6]
    let headerLength: Int
    let start: Int
    if major == 1 {
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
      start = 10
    } else if major == 2 || major == 3, bytes.count >= 12 {
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
      start = 12
    } else {
      throw NpyError("unsupported .npy version \(major)")
    }
    guard data.count >= start + headerLength else { throw NpyError("truncated .npy header") }
    let header = String(decoding: data.subdata(in: (data.startIndex + start)..<(data.startIndex + start + headerLength)), as: UTF8.self)
    func field(_ key: String) -> String? {
      guard let r = header.range(of: "'\(key)':") else { return nil }
      return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
    }
    guard let d = field("descr"), let q1 = d.firstIndex(of: "'"),
      let q2 = d[d.index(after: q1)...].firstIndex(of: "'")
    else { throw NpyError(".npy header has no descr") }
    let descr = String(d[d.index(after: q1)..<q2])
    if let f = field("fortran_order"), f.hasPrefix("True") { throw NpyError("Fortran-order .npy arrays are not supported") }
    guard let sh = field("shape"), let open = sh.firstIndex(of: "("), let close = sh[open...].firstIndex(of: ")") else {
      throw NpyError(".npy header has no shape")
    }
    let dims = sh[sh.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    var shape: [Int] = []
    for dim in dims {
      guard let v = Int(dim), v >= 0 else { throw NpyError(".npy shape has a bad dimension '\(dim)'") }
      shape.append(v)
    }
    guard let size = elementSize(descr) else { throw NpyError("unsupported .npy dtype \(descr)") }
    // sizes from the file: overflow-checked
    var count = 1
    for d in shape + [size] {
      let (c, o) = count.multipliedReportingOverflow(by: d)
      guard !o else { throw NpyError(".npy shape \(shape) is too large") }
      count = c
    }
    count /= size
    let body = data.suffix(from: data.startIndex + start + headerLength)
    guard body.count == count * size else {
      throw NpyError(".npy body holds \(body.count) bytes, shape \(shape) of \(descr) needs \(count * size)")
    }
    return Parsed(descr: descr, shape: shape, body: Data(body))
  }

  static func elementSize(_ descr: String) -> Int? {
    ["<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8, "|u1": 1, "<u2": 2, "|i1": 1, "<i2": 2, "<u4": 4].first { $0.key == descr }?.value
  }

  /// The array's values as Int64 (integer dtypes only).
  public static func integers(_ a: Parsed) throws -> [Int64] {
    let n = a.shape.reduce(1, *)
    return try a.body.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [Int64] in
      switch a.descr {
      case "|u1": return (0..<n).map { Int64(raw.load(fromByteOffset: $0, as: UInt8.self)) }
      case "|i1": return (0..<n).map { Int64(raw.load(fromByteOffset: $0, as: Int8.self)) }
      case "<u2": return (0..<n).map { Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
      case "<i2": return (0..<n).map { Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
      case "<i4": return (0..<n).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
      case "<u4": return (0..<n).map { Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
      case "<i8": return (0..<n).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
      default: throw NpyError("dtype \(a.descr) is not an integer type")
      }
    }
  }

  /// A float .npy (float32 or float64) as Float values.
  public static func decodeFloats(_ data: Data) throws -> FloatArray {
    let a = try decode(data)
    let n = a.shape.reduce(1, *)
    let values: [Float] = try a.body.withUnsafeBytes { raw in
      switch a.descr {
      case "<f4": return (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
      case "<f8": return (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
      default: throw NpyError("dtype \(a.descr) is not float32 or float64")
      }
    }
    return FloatArray(shape: a.shape, values: values)
  }
}

/// A .npy file that cannot be read, with a one-line reason.
public struct NpyError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
