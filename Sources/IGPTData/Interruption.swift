import Foundation

/// What a stop signal may cut short. Work outside a critical section (a checkpoint being
/// written) may end at once; the temporary directories registered here (`AtomicDirectory`'s,
/// not yet renamed into place) are removed when it does, so nothing half-written is left.
public enum Interruption {
  private static let lock = NSLock()
  nonisolated(unsafe) private static var depth = 0
  nonisolated(unsafe) private static var temporaries: Set<String> = []

  /// Runs body as one piece a stop waits for.
  public static func critical<T>(_ body: () throws -> T) rethrows -> T {
    lock.withLock { depth += 1 }
    defer { lock.withLock { depth -= 1 } }
    return try body()
  }

  public static var inCriticalSection: Bool { lock.withLock { depth > 0 } }

  static func register(temporary path: String) { _ = lock.withLock { temporaries.insert(path) } }
  static func unregister(temporary path: String) { _ = lock.withLock { temporaries.remove(path) } }

  /// Removes every registered temporary directory (before the process ends mid-work).
  public static func removeTemporaries() {
    for path in lock.withLock({ temporaries }) { try? FileManager.default.removeItem(atPath: path) }
  }
}
