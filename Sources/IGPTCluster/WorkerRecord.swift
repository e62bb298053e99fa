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
  /// Index of the task it holds in the current phase, if any.
  var task: Int?
  /// The worker said it is ready for work.
  var ready = false
  var microbatchesDone = 0
  var bytesSent = 0
  var bytesReceived = 0
  var lastAssigned = Date.distantPast

  var label: String { "\(name) (\(address))" }
}
