import Foundation

/// An operator's connection to a coordinator (`igpt status`, later probe jobs).
public final class ClusterClient {
  let endpoint: String
  let socket: ZMQSocket

  let keyed: Bool

  public init(endpoint: String, keys: ClientKeys? = nil) throws {
    self.endpoint = endpoint
    keyed = keys != nil
    socket = try ZMQSocket(.dealer)
    try keys?.apply(to: socket)
    try socket.connect(endpoint)
  }

  /// Sends a request and waits for the reply of the expected kind.
  public func request(_ m: Message, expecting kind: Message.Kind, timeout: Double) throws -> Message {
    socket.send([m.encode()])
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      guard socket.poll(timeout: deadline.timeIntervalSinceNow), let r = socket.receive(), r.frames.count == 1 else { continue }
      let reply = try Message.decode(r.frames[0])
      if reply.kind == .refuse {
        throw ClusterError("\(endpoint) refused: \((try? reply.decodeMeta(Wire.Refuse.self).reason) ?? "no reason given")")
      }
      if reply.kind == kind { return reply }
    }
    throw ClusterError(String(format: "no answer from a coordinator at %@ within %.0f s%@", endpoint, timeout,
                              keyed ? " (is this key on its allow-list, and --server-key its public key?)" : " (if it requires keys, give --secret-key and --server-key)"))
  }

  public func status(timeout: Double) throws -> ClusterStatus {
    try request(Message(.statusRequest), expecting: .statusReply, timeout: timeout).decodeMeta(ClusterStatus.self)
  }
}
