import Foundation

/// SIGINT / SIGTERM turned into a flag that long loops poll, so they can stop cleanly
/// (after writing a checkpoint) instead of dying mid-write.
enum StopSignal {
  nonisolated(unsafe) static var received: Int32 = 0

  /// Installs the handlers (a second signal of the same kind still stops at once).
  static func install() {
    for sig in [SIGINT, SIGTERM] {
      signal(sig) { s in
        if StopSignal.received != 0 { _exit(128 + s) }
        StopSignal.received = s
      }
    }
  }

  static var name: String { received == SIGINT ? "SIGINT" : received == SIGTERM ? "SIGTERM" : "signal \(received)" }
}
