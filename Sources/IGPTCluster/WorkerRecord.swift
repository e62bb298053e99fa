import Foundation

/// What the coordinator knows about one connected worker (the tasks it holds are the
/// scheduler's).
struct WorkerRecord {
  /// ZeroMQ routing id.
  let id: Data
  let name: String
  let host: String
  let pid: Int32
  let address: String
  var lastHeard: Date
  /// Training parameter version it was last sent (nil = none).
  var parameterVersion: UInt64?
  /// Probe-job parameter snapshot it was last sent.
  var probeSnapshot: UInt64?
  var microbatchesDone = 0
  var bytesSent = 0
  var bytesReceived = 0
  /// Its fingerprint at the run's widths was checked (it gets no work before).
  var numericsChecked = false
  /// Why its numerics are not the run's (policy any): the run is marked not reproducible when
  /// its first result is used.
  var otherNumerics: String?

  var label: String { "\(name) (\(address))" }
}
