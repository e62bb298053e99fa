import Dispatch

/// Optional wall-clock accounting of a training step by kernel, for `igpt bench --profile`.
///
/// Off by default: then `measure` is one branch around the call.
public enum StepProfile {
  nonisolated(unsafe) public static var enabled = false
  nonisolated(unsafe) private static var totals: [String: UInt64] = [:]

  /// Runs body, adding its wall time to `name` when profiling is on.
  @inline(__always)
  public static func measure<R>(_ name: String, _ body: () -> R) -> R {
    if !enabled { return body() }
    let start = DispatchTime.now().uptimeNanoseconds
    let r = body()
    totals[name, default: 0] += DispatchTime.now().uptimeNanoseconds - start
    return r
  }

  /// Milliseconds per kernel since the last reset.
  public static var milliseconds: [String: Double] { totals.mapValues { Double($0) / 1e6 } }

  public static func reset() { totals = [:] }
}
