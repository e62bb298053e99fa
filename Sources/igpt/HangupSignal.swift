import Foundation
import Synchronization

/// SIGHUP as a flag the coordinator's loop takes (re-read the allow-list).
enum HangupSignal {
  static let flag = Atomic<Bool>(false)

  static func install() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGHUP)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    signal(SIGHUP) { _ in HangupSignal.flag.store(true, ordering: .relaxed) }
  }

  /// True once per signal received.
  static func take() -> Bool { flag.exchange(false, ordering: .relaxed) }
}
