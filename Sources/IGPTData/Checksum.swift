import CZlib

/// CRC-32 (zlib's), used for shard, checkpoint and message checksums.
public enum Checksum {
  public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    crc32(continuing: UInt32(CZlib.crc32(0, nil, 0)), bytes)
  }

  /// The CRC-32 of the bytes already summed into `crc` followed by `bytes`.
  public static func crc32(continuing crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c = uLong(crc)
    var p = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
    var left = bytes.count
    while left > 0 {
      let n = min(left, 1 << 30)
      c = CZlib.crc32(c, p, uInt(n))
      p = p! + n
      left -= n
    }
    return UInt32(c)
  }
}
