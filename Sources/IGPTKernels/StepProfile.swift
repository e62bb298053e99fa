import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Optional wall-clock accounting of a training step by kernel, for `igpt bench --profile`.
///
/// Off by default: then `measure` is one branch around the call. Forward-only passes that run
/// image groups on their own threads (`Parallel.serially`) add each thread's time: their
/// figures are thread-milliseconds, not wall time.
public enum StepProfile {
  nonisolated(unsafe) public static var enabled = false
  nonisolated(unsafe) private static var totals: [String: UInt64] = [:]
  nonisolated(unsafe) private static var lock = pthread_mutex_t()
  private static let lockReady: Bool = { pthread_mutex_init(&lock, nil); return true }()

  /// Runs body, adding its wall time to `name` when profiling is on.
  @inline(__always)
  public static func measure<R>(_ name: String, _ body: () -> R) -> R {
    if !enabled { return body() }
    let start = DispatchTime.now().uptimeNanoseconds
    let r = body()
    let elapsed = DispatchTime.now().uptimeNanoseconds - start
    _ = lockReady
    pthread_mutex_lock(&lock)
    totals[name, default: 0] += elapsed
    pthread_mutex_unlock(&lock)
    return r
  }

  /// Milliseconds per kernel since the last reset.
  public static var milliseconds: [String: Double] { totals.mapValues { Double($0) / 1e6 } }

  public static func reset() { totals = [:] }
}
