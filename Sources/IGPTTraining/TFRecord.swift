import CChecksum
import Foundation

/// TFRecord framing, which TensorBoard event files use: each record is its length (u64
/// little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of
/// the data.
public enum TFRecord {
  /// TensorFlow's CRC mask: rotate right by 15 bits, add a constant.
  public static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

  static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt32 { igpt_crc32c(0, bytes.baseAddress, bytes.count) }

  /// One framed record.
  public static func frame(_ data: Data) -> Data {
    var out = Data(capacity: data.count + 16)
    var length = UInt64(data.count).littleEndian
    let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
    out.append(lengthBytes)
    var lengthCRC = masked(lengthBytes.withUnsafeBytes { crc($0) }).littleEndian
    withUnsafeBytes(of: &lengthCRC) { out.append(contentsOf: $0) }
    out.append(data)
    var dataCRC = masked(data.withUnsafeBytes { crc($0) }).littleEndian
    withUnsafeBytes(of: &dataCRC) { out.append(contentsOf: $0) }
    return out
  }

  /// The intact records at the start of `file`, each with the offset just past it; reading
  /// stops at the first truncated or damaged record (a writer killed mid-record leaves one).
  public static func records(_ file: Data) -> [(data: Data, end: Int)] {
    var out: [(Data, Int)] = []
    file.withUnsafeBytes { raw in
      var at = 0
      while raw.count - at >= 16 {  // the smallest record: two CRCs and the length, no data
        let header = UnsafeRawBufferPointer(rebasing: raw[at..<(at + 8)])
        let length = header.loadUnaligned(as: UInt64.self).littleEndian
        guard masked(crc(header)) == raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self).littleEndian,
          length <= UInt64(raw.count - at - 16)
        else { return }
        let start = at + 12, end = start + Int(length)
        let body = UnsafeRawBufferPointer(rebasing: raw[start..<end])
        guard masked(crc(body)) == raw.loadUnaligned(fromByteOffset: end, as: UInt32.self).littleEndian else { return }
        out.append((Data(body), end + 4))
        at = end + 4
      }
    }
    return out
  }
}
