import Foundation
import IGPTData
import Synchronization

/// SIGINT / SIGTERM turned into a flag that long loops poll, so they can stop cleanly
/// (after writing a checkpoint) instead of dying mid-write. The flag is atomic: a plain global
/// could be hoisted out of the training loop by the optimiser and never seen to change.
///
/// Stopping is always prompt: a watchdog thread ends the process `grace` seconds after the
/// signal unless the command has taken the stop in hand (`acknowledge`), waiting only for a
/// checkpoint being written (`Interruption.critical`); it removes unfinished temporary
/// directories first. A second signal of the same kind ends the process at once. main.swift
/// installs it for every command.
enum StopSignal {
  static let flag = Atomic<Int32>(0)
  static let acknowledged = Atomic<Bool>(false)
  static let grace = 1.5

  /// Installs the handlers and the watchdog, and unblocks both signals: a blocked mask is
  /// inherited across exec, so a parent that blocks them (some runtimes' threads do) would
  /// otherwise leave SIGTERM pending forever.
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
    Thread.detachNewThread { watch() }
  }

  /// The command is stopping by itself (a checkpoint, then a clean exit): no forced exit.
  static func acknowledge() { acknowledged.store(true, ordering: .relaxed) }

  private static func watch() {
    while received == 0 { usleep(20_000) }
    let since = Date()
    while acknowledged.load(ordering: .relaxed) == false {
      if Date().timeIntervalSince(since) >= grace && !Interruption.inCriticalSection {
        Interruption.removeTemporaries()
        FileHandle.standardError.write(Data("stopped by \(name): interrupted; nothing half-written is left\n".utf8))
        _exit(128 + received)
      }
      usleep(20_000)
    }
  }

  /// Ends the process now, skipping exit-time destructors. A task may still be computing on
  /// another thread, inside OpenBLAS: exit() would run OpenBLAS's destructor, which unmaps the
  /// buffers that thread is using (a crash, and a backtrace that takes seconds). For commands
  /// with nothing left to write when they get here.
  static func exitNow(_ code: Int32) -> Never {
    fflush(stdout)
    _exit(code)
  }

  static var received: Int32 { flag.load(ordering: .relaxed) }

  static var name: String { received == SIGINT ? "SIGINT" : received == SIGTERM ? "SIGTERM" : "signal \(received)" }
}
