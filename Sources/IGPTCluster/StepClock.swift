import Foundation

/// Where one step's time and bytes went on the coordinator: wall time, the workers' compute
/// (the busiest worker's sum: the others ran beside it), the coordinator's own decoding,
/// summing and encoding, and the rest, waiting (for the network, for stragglers, for work).
struct StepClock {
  let started = Date()
  var bytesIn = 0
  var bytesOut = 0
  var gradients = 0
  /// Seconds spent handing messages to ZeroMQ (encoding and copying them).
  var sendSeconds = 0.0
  /// Compute seconds each worker reported for this step's results.
  private(set) var computeByWorker: [Data: Double] = [:]

  mutating func computed(by worker: Data, seconds: Double) {
    computeByWorker[worker, default: 0] += min(max(seconds, 0), 3600)
  }

  var computeSum: Double { computeByWorker.values.reduce(0, +) }

  struct Split {
    var total: Double
    var compute: Double
    var transfer: Double
    var wait: Double
  }

  func split(coordinatorSeconds: Double, now: Date = Date()) -> Split {
    let total = now.timeIntervalSince(started)
    let compute = min(total, computeByWorker.values.max() ?? 0)
    let transfer = min(total - compute, coordinatorSeconds)
    return Split(total: total, compute: compute, transfer: transfer, wait: max(0, total - compute - transfer))
  }
}
