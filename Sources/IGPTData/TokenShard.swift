import Foundation

/// One shard file: a 32-byte header, then tokens (count x seq, 1 or 2 bytes each, little-endian),
/// labels (count x Int32) and source indices (count x Int32).
///
/// Header: magic "IGPTSHD1", token bytes, sequence length, count, has-labels (UInt32 each),
/// 8 reserved bytes.
public enum TokenShard {
  public static let magic = Array("IGPTSHD1".utf8)
  public static let headerBytes = 32

  /// The bytes of a shard.
  /// Bytes per token for a vocabulary: 1 up to 256 tokens, else 2 (the one rule).
  public static func tokenBytes(vocab: Int) -> Int { vocab <= 256 ? 1 : 2 }

  public static func encode(tokens: ArraySlice<UInt16>, tokenBytes: Int, sequenceLength: Int,
                            labels: ArraySlice<Int32>?, sourceIndices: ArraySlice<Int32>) -> Data {
    let count = sourceIndices.count
    var d = Data(capacity: headerBytes + count * (sequenceLength * tokenBytes + 8))
    d.append(contentsOf: magic)
    for v in [UInt32(tokenBytes), UInt32(sequenceLength), UInt32(count), labels == nil ? 0 : 1] {
      withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) }
    }
    d.append(contentsOf: [UInt8](repeating: 0, count: 8))
    if tokenBytes == 1 {
      d.append(contentsOf: tokens.map { UInt8($0) })
    } else {
      tokens.withUnsafeBytes { d.append(contentsOf: $0) }  // little-endian host
    }
    let unlabelled = [Int32](repeating: -1, count: count)
    (labels.map(Array.init) ?? unlabelled).withUnsafeBytes { d.append(contentsOf: $0) }
    Array(sourceIndices).withUnsafeBytes { d.append(contentsOf: $0) }
    return d
  }

  /// Header fields of shard bytes, validated against what the manifest says.
  static func validateHeader(_ raw: UnsafeRawBufferPointer, path: String, tokenBytes: Int,
                             sequenceLength: Int, count: Int) throws {
    guard raw.count >= headerBytes, Array(raw[0..<8]) == magic else {
      throw DataError.file(path, "not an igpt token shard (bad magic)")
    }
    func field(_ i: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8 + 4 * i, as: UInt32.self))) }
    guard field(0) == tokenBytes, field(1) == sequenceLength, field(2) == count else {
      throw DataError.file(path, "shard header (\(field(0))-byte tokens, length \(field(1)), \(field(2)) images) disagrees with the manifest")
    }
    let expected = headerBytes + count * (sequenceLength * tokenBytes + 8)
    guard raw.count == expected else {
      throw DataError.file(path, "shard is \(raw.count) bytes, expected \(expected)")
    }
  }
}
