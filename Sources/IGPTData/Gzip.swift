import CZlib
import Foundation

/// gzip decompression (zlib), for IDX files shipped as .gz.
public enum Gzip {
  /// True when data starts with the gzip magic bytes 1f 8b.
  public static func isGzip(_ data: Data) -> Bool {
    data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b
  }

  /// The decompressed bytes; throws a DataError naming `path` for corrupt or truncated input.
  public static func decompress(_ data: Data, path: String) throws -> Data {
    var stream = z_stream()
    // 15 + 32: a 32 KiB window, gzip or zlib header detected automatically.
    guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw DataError.file(path, "cannot start gzip decompression")
    }
    defer { inflateEnd(&stream) }
    var out = Data()
    let chunk = 1 << 20
    var buffer = [UInt8](repeating: 0, count: chunk)
    var status: Int32 = Z_OK
    try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
      stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
      stream.avail_in = uInt(input.count)
      repeat {
        let produced: Int = buffer.withUnsafeMutableBufferPointer { b in
          stream.next_out = b.baseAddress
          stream.avail_out = uInt(chunk)
          status = inflate(&stream, Z_NO_FLUSH)
          return chunk - Int(stream.avail_out)
        }
        if status != Z_OK && status != Z_STREAM_END {
          let reason = status == Z_BUF_ERROR ? "truncated gzip data" : "corrupt gzip data"
          throw DataError.file(path, reason)
        }
        out.append(contentsOf: buffer[0..<produced])
        if status == Z_OK && stream.avail_in == 0 && produced == 0 {
          throw DataError.file(path, "truncated gzip data")
        }
      } while status != Z_STREAM_END
    }
    return out
  }
}
