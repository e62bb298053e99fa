import Foundation
import Synchronization

/// SIGINT / SIGTERM turned into a flag that long loops poll, so they can stop cleanly
/// (after writing a checkpoint) instead of dying mid-write. The flag is atomic: a plain global
/// could be hoisted out of the training loop by the optimiser and never seen to change.
enum StopSignal {
  static let flag = Atomic<Int32>(0)

  /// Installs the handlers (a second signal of the same kind still stops at once) and unblocks
  /// both signals: a blocked mask is inherited across exec, so a parent that blocks them (some
  /// runtimes' threads do) would otherwise leave SIGTERM pending forever.
  static func install() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    for sig in [SIGINT, SIGTERM] {
      signal(sig) { s in
        if StopSignal.flag.load(ordering: .relaxed) != 0 { _exit(128 + s) }
        StopSignal.flag.store(s, ordering: .relaxed)
      }
    }
  }

  static var received: Int32 { flag.load(ordering: .relaxed) }

  static var name: String { received == SIGINT ? "SIGINT" : received == SIGTERM ? "SIGTERM" : "signal \(received)" }
}
