import Foundation

/// Writes a file piece by piece, keeping its CRC-32, and fsyncs it on `finish`.
///
/// Checkpoints of the large presets are bigger than what is left of memory beside the model
/// (igpt-l: 5.4 GB of parameters and 10.9 GB of AdamW moments), so they are written straight
/// from the slabs, never assembled in one buffer.
public final class DurableFileWriter {
  public let path: String
  private var fd: Int32
  /// CRC-32 of everything written so far.
  public private(set) var crc: UInt32 = Checksum.crc32(UnsafeRawBufferPointer(start: nil, count: 0))
  public private(set) var bytesWritten = 0

  /// Creates (or truncates) the file.
  public init(path: String) throws {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw DataError.file(path, "cannot create (\(String(cString: strerror(errno))))") }
  }

  deinit { if fd >= 0 { close(fd) } }

  /// Appends bytes (in pieces of at most 64 MB, so a huge slab never needs one giant write).
  public func write(_ raw: UnsafeRawBufferPointer) throws {
    guard let base = raw.baseAddress, raw.count > 0 else { return }
    crc = Checksum.crc32(continuing: crc, raw)
    var off = 0
    while off < raw.count {
      let n = Foundation.write(fd, base + off, min(raw.count - off, 64 << 20))
      if n < 0 {
        if errno == EINTR { continue }
        throw DataError.file(path, "write failed (\(String(cString: strerror(errno))))")
      }
      off += n
    }
    bytesWritten += raw.count
  }

  public func write(_ data: Data) throws { try data.withUnsafeBytes { try write($0) } }

  /// fsyncs and closes the file; returns its CRC-32.
  @discardableResult
  public func finish() throws -> UInt32 {
    defer {
      close(fd)
      fd = -1
    }
    guard fsync(fd) == 0 else { throw DataError.file(path, "fsync failed (\(String(cString: strerror(errno))))") }
    return crc
  }
}
