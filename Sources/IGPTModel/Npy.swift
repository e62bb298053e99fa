import Foundation

/// Minimal NumPy .npy (format 1.0, C order, little-endian) for integer token batches and masks.
public enum Npy {
  /// A .npy file's bytes for an int32 array of the given shape.
  public static func encode(int32 values: [Int32], shape: [Int]) -> Data {
    encode(descr: "<i4", shape: shape, body: values.withUnsafeBytes { Data($0) })
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
}
