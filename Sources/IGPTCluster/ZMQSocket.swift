import CZeroMQ
import Foundation

/// A ZeroMQ socket (ROUTER on the coordinator, DEALER on workers and clients) with the options
/// igpt sets deliberately (platform-notes.md): no linger on close, bounded queues, a message
/// size limit, and for the ROUTER mandatory routing and identity handover.
public final class ZMQSocket {
  /// One process-wide context (libzmq's I/O thread).
  nonisolated(unsafe) static let context: UnsafeMutableRawPointer = zmq_ctx_new()!

  let handle: UnsafeMutableRawPointer
  private var closed = false

  /// A received multipart message: its frames, and the sender's address when known.
  public struct Received {
    public var frames: [Data]
    public var peerAddress: String
  }

  public enum Kind { case router, dealer, rep }

  public init(_ kind: Kind) throws {
    guard let h = zmq_socket(Self.context, kind == .router ? ZMQ_ROUTER : kind == .dealer ? ZMQ_DEALER : ZMQ_REP) else {
      throw ClusterError("cannot create a ZeroMQ socket: \(Self.lastError)")
    }
    handle = h
    try set(ZMQ_LINGER, 0)
    if kind == .router {
      // Report unroutable sends instead of dropping them; let a restarted worker take over its id.
      try set(ZMQ_ROUTER_MANDATORY, 1)
      try set(ZMQ_ROUTER_HANDOVER, 1)
    }
  }

  deinit { close() }

  public func close() {
    if !closed {
      zmq_close(handle)
      closed = true
    }
  }

  static var lastError: String { String(cString: zmq_strerror(zmq_errno())) }

  public func set(_ option: Int32, _ value: Int32) throws {
    var v = value
    guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else {
      throw ClusterError("zmq_setsockopt(\(option)): \(Self.lastError)")
    }
  }

  public func set(_ option: Int32, int64 value: Int64) throws {
    var v = value
    guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else {
      throw ClusterError("zmq_setsockopt(\(option)): \(Self.lastError)")
    }
  }

  public func set(_ option: Int32, bytes: [UInt8]) throws {
    guard bytes.withUnsafeBytes({ zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }) == 0 else {
      throw ClusterError("zmq_setsockopt(\(option)): \(Self.lastError)")
    }
  }

  /// Queue sizes in messages, both directions.
  public func setHighWaterMarks(_ n: Int32) throws {
    try set(ZMQ_SNDHWM, n)
    try set(ZMQ_RCVHWM, n)
  }

  /// Larger incoming messages make libzmq drop the connection of the peer that sent them.
  public func setMaxMessageSize(_ bytes: Int) throws { try set(ZMQ_MAXMSGSIZE, int64: Int64(bytes)) }

  public func bind(_ endpoint: String) throws {
    guard zmq_bind(handle, endpoint) == 0 else { throw ClusterError("cannot bind \(endpoint): \(Self.lastError)") }
  }

  public func connect(_ endpoint: String) throws {
    guard zmq_connect(handle, endpoint) == 0 else { throw ClusterError("cannot connect to \(endpoint): \(Self.lastError)") }
  }

  /// The endpoint actually bound (resolves a `:0` or `*` port).
  public var lastEndpoint: String {
    var buf = [CChar](repeating: 0, count: 512)
    var len = buf.count
    guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buf, &len) == 0 else { return "" }
    return String(cString: buf)
  }

  /// Outcome of a non-blocking send.
  public enum SendResult: Equatable { case sent, wouldBlock, unreachable }

  /// Sends the frames as one message without blocking: `wouldBlock` when the peer's queue is
  /// full, `unreachable` when a ROUTER has no such peer.
  @discardableResult
  public func send(_ frames: [Data]) -> SendResult {
    for (i, f) in frames.enumerated() {
      let flags = ZMQ_DONTWAIT | (i < frames.count - 1 ? ZMQ_SNDMORE : 0)
      let rc = f.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
      if rc < 0 {
        let e = zmq_errno()
        if e == EHOSTUNREACH { return .unreachable }
        return .wouldBlock
      }
    }
    return .sent
  }

  /// Receives one whole message if one is waiting (nil otherwise).
  public func receive() -> Received? {
    var frames: [Data] = []
    var peer = ""
    while true {
      var msg = zmq_msg_t()
      zmq_msg_init(&msg)
      defer { zmq_msg_close(&msg) }
      if zmq_msg_recv(&msg, handle, frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 { return frames.isEmpty ? nil : Received(frames: frames, peerAddress: peer) }
      if peer.isEmpty, let a = zmq_msg_gets(&msg, "Peer-Address") { peer = String(cString: a) }
      let n = zmq_msg_size(&msg)
      frames.append(n == 0 ? Data() : Data(bytes: zmq_msg_data(&msg), count: n))
      if zmq_msg_more(&msg) == 0 { return Received(frames: frames, peerAddress: peer) }
    }
  }

  /// Waits up to `timeout` seconds for a message to arrive; true when one is waiting.
  public func poll(timeout: Double) -> Bool {
    var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
    let rc = zmq_poll(&item, 1, Int(max(0, timeout) * 1000))
    return rc > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0
  }

  /// Waits up to `timeout` seconds for a message on any of the sockets, or for `fd` to become
  /// readable (a wake-up pipe).
  public static func poll(_ sockets: [ZMQSocket], timeout: Double, orReadable fd: Int32? = nil) {
    var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    if let fd { items.append(zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0)) }
    _ = zmq_poll(&items, Int32(items.count), Int(max(0, timeout) * 1000))
  }

  /// Waits up to `timeout` seconds for a message or for `fd` to become readable (a wake-up pipe).
  public func poll(timeout: Double, orReadable fd: Int32) { Self.poll([self], timeout: timeout, orReadable: fd) }
}

/// A cluster failure with a one-line reason.
public struct ClusterError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
