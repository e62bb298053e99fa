import Foundation

/// Linear warmup from 0 to the peak, then cosine decay to 0 at the last step (the paper's schedule).
public struct LearningRateSchedule: Sendable, Equatable {
  public var peak: Double
  public var warmup: Int
  public var steps: Int

  public init(peak: Double, warmup: Int, steps: Int) {
    self.peak = peak
    self.warmup = warmup
    self.steps = steps
  }

  /// Learning rate of 0-based step s: peak * (s + 1) / warmup during warmup, then
  /// peak * (1 + cos(pi * progress)) / 2 with progress 0 at the end of warmup and 1 at `steps`.
  public func rate(at s: Int) -> Double {
    if s < warmup { return peak * Double(s + 1) / Double(warmup) }
    let span = max(1, steps - warmup)
    let progress = min(1, Double(s - warmup) / Double(span))
    return peak * 0.5 * (1 + cos(Double.pi * progress))
  }
}
