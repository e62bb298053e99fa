import Foundation

/// Builds a directory under a hidden temporary name beside its destination and renames it into
/// place only when complete, so an interrupted or failed run leaves nothing that looks finished.
/// Every file is fsynced, then the directory, then (after the rename) its parent.
public final class AtomicDirectory {
  public let destination: String
  public let temporary: String
  private var committed = false

  /// Fails if the destination already exists; missing parent directories are created (as
  /// `mkdir -p` would: `--out data/x` works in a fresh checkout).
  public init(destination: String) throws {
    let fm = FileManager.default
    let dest = (destination as NSString).standardizingPath
    guard !fm.fileExists(atPath: dest) else {
      throw DataError.file(dest, "already exists (choose another --out or remove it)")
    }
    let parent = (dest as NSString).deletingLastPathComponent
    let parentDir = parent.isEmpty ? "." : parent
    var isDir: ObjCBool = false
    if !fm.fileExists(atPath: parentDir, isDirectory: &isDir) {
      do { try fm.createDirectory(atPath: parentDir, withIntermediateDirectories: true) } catch {
        throw DataError.file(parentDir, "cannot create the parent directory (\(error.localizedDescription))")
      }
    } else if !isDir.boolValue {
      throw DataError.file(parentDir, "is not a directory")
    }
    self.destination = dest
    let name = (dest as NSString).lastPathComponent
    temporary = (parentDir as NSString).appendingPathComponent(".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    do { try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false) } catch {
      throw DataError.file(temporary, "cannot create (\(error.localizedDescription))")
    }
    Interruption.register(temporary: temporary)
  }

  deinit {
    if !committed { try? FileManager.default.removeItem(atPath: temporary) }
    Interruption.unregister(temporary: temporary)
  }

  /// Writes and fsyncs one file inside the directory.
  public func write(_ data: Data, to name: String) throws {
    let path = (temporary as NSString).appendingPathComponent(name)
    try Self.writeDurably(data, path: path)
  }

  /// Writes data to path and fsyncs it.
  public static func writeDurably(_ data: Data, path: String) throws {
    let w = try DurableFileWriter(path: path)
    try w.write(data)
    try w.finish()
  }

  /// Writes one file inside the directory piece by piece through `body`, fsyncs it, and
  /// returns its CRC-32.
  @discardableResult
  public func writeFile(_ name: String, _ body: (DurableFileWriter) throws -> Void) throws -> UInt32 {
    let w = try DurableFileWriter(path: (temporary as NSString).appendingPathComponent(name))
    try body(w)
    return try w.finish()
  }

  /// fsyncs a directory so renames and new entries in it survive a crash.
  public static func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY)
    if fd >= 0 {
      fsync(fd)
      close(fd)
    }
  }

  /// Renames the finished directory into place.
  public func commit() throws {
    Self.syncDirectory(temporary)
    guard rename(temporary, destination) == 0 else {
      throw DataError.file(destination, "cannot move the finished directory into place (\(String(cString: strerror(errno))))")
    }
    committed = true
    let parent = (destination as NSString).deletingLastPathComponent
    Self.syncDirectory(parent.isEmpty ? "." : parent)
  }
}
