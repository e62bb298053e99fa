import Foundation

/// What the coordinator knows about one connected worker.
struct WorkerRecord {
  /// ZeroMQ routing id.
  let id: Data
  let name: String
  let host: String
  let pid: Int32
  let address: String
  var lastHeard: Date
  /// Parameter version the worker was last sent (nil = none).
  var have: UInt64?
  /// Indices of the current phase's tasks it holds (computing or queued there).
  var held: [Int] = []
  /// Indices of the running probe job's feature tasks it holds.
  var heldProbe: [Int] = []
  /// Probe parameter snapshot it was last sent.
  var haveProbe: UInt64?
  /// More tasks it can take now (it computes one and keeps the next at hand).
  var credit = 0
  var microbatchesDone = 0
  var bytesSent = 0
  var bytesReceived = 0
  var lastAssigned = Date.distantPast
  /// Its fingerprint at the run's widths was checked (it gets no work before).
  var numericsChecked = false
  /// Why its numerics are not the run's (policy any): the run is marked not reproducible when
  /// its first result is used.
  var otherNumerics: String?

  var label: String { "\(name) (\(address))" }
}
