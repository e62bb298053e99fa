import Foundation

/// A read-only memory mapping of a whole file, unmapped on deinit.
public final class MappedFile: @unchecked Sendable {
  public let bytes: UnsafeRawBufferPointer

  public init(path: String) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw DataError.file(path, "cannot open (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw DataError.file(path, "cannot stat") }
    let size = Int(st.st_size)
    if size == 0 {
      bytes = UnsafeRawBufferPointer(start: nil, count: 0)
      return
    }
    guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
      throw DataError.file(path, "cannot map into memory")
    }
    bytes = UnsafeRawBufferPointer(start: p, count: size)
  }

  deinit {
    if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
  }
}
