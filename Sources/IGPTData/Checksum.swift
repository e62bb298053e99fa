import CZlib

/// CRC-32 (zlib's), used for shard checksums.
public enum Checksum {
  public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var crc: uLong = CZlib.crc32(0, nil, 0)
    var p = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
    var left = bytes.count
    while left > 0 {
      let n = min(left, 1 << 30)
      crc = CZlib.crc32(crc, p, uInt(n))
      p = p! + n
      left -= n
    }
    return UInt32(crc)
  }
}
