import Foundation

/// A loopback TCP relay that records every byte it forwards, both ways: a capture of what a
/// worker and a coordinator say on the wire, without root or tcpdump.
final class TCPRecorder: @unchecked Sendable {
  private let listener: Int32
  private let target: UInt16
  private let lock = NSLock()
  private var captured = Data()
  private var closed = false

  /// Listens on 127.0.0.1:port and relays each connection to 127.0.0.1:target.
  init(port: UInt16, target: UInt16) throws {
    self.target = target
    listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var addr = Self.address(port)
    let ok = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0, listen(listener, 8) == 0 else { throw CocoaError(.fileWriteUnknown) }
    Thread.detachNewThread { [self] in acceptLoop() }
  }

  var bytes: Data { lock.withLock { captured } }

  func close() {
    lock.withLock { closed = true }
    shutdown(listener, Int32(SHUT_RDWR))
    Foundation.close(listener)
  }

  static func address(_ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    return a
  }

  private func acceptLoop() {
    while true {
      let client = accept(listener, nil, nil)
      if client < 0 { return }
      let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var addr = Self.address(target)
      let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
      }
      if ok != 0 {
        Foundation.close(client)
        Foundation.close(server)
        continue
      }
      Thread.detachNewThread { [self] in pump(from: client, to: server) }
      Thread.detachNewThread { [self] in pump(from: server, to: client) }
    }
  }

  private func pump(from a: Int32, to b: Int32) {
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = read(a, &buf, buf.count)
      if n <= 0 { break }
      lock.withLock { if !closed { captured.append(contentsOf: buf[0..<n]) } }
      var off = 0
      while off < n {
        let w = buf[off..<n].withUnsafeBytes { write(b, $0.baseAddress, n - off) }
        if w <= 0 { break }
        off += w
      }
    }
    shutdown(b, Int32(SHUT_WR))
  }
}
