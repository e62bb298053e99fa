import Foundation

/// The process's peak resident memory.
public enum PeakMemory {
  /// Peak resident set size in MiB (getrusage; Linux reports KiB).
  public static func residentMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
  }
}
