import CZeroMQ
import Foundation

/// A CURVE key (32 bytes) as its 40-character Z85 text, the form key files hold.
public struct CurveKey: Hashable, Sendable, CustomStringConvertible {
  public let z85: String

  public var description: String { z85 }

  /// Parses Z85 text; nil unless it is exactly 40 valid Z85 characters.
  public init?(z85 text: String) {
    let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard t.utf8.count == 40 else { return nil }
    var out = [UInt8](repeating: 0, count: 32)
    guard zmq_z85_decode(&out, t) != nil else { return nil }
    z85 = t
  }

  /// The key from 32 raw bytes (as a ZAP request carries it).
  public init?(bytes: [UInt8]) {
    guard bytes.count == 32 else { return nil }
    var text = [CChar](repeating: 0, count: 41)
    guard zmq_z85_encode(&text, bytes, 32) != nil else { return nil }
    z85 = String(cString: text)
  }

  /// Makes a socket a CURVE server with this secret key, checked by the ZAP handler (which
  /// must be bound first, or libzmq admits everyone).
  func serve(on socket: ZMQSocket) throws {
    try socket.set(ZMQ_CURVE_SERVER, 1)
    try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(z85.utf8))
    try socket.set(ZMQ_ZAP_DOMAIN, bytes: Array("igpt".utf8))
  }

  /// The key's 32 raw bytes.
  public var bytes: [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    _ = zmq_z85_decode(&out, z85)
    return out
  }

  /// A fresh key pair.
  public static func generatePair() throws -> (public: CurveKey, secret: CurveKey) {
    var pub = [CChar](repeating: 0, count: 41)
    var sec = [CChar](repeating: 0, count: 41)
    guard zmq_curve_keypair(&pub, &sec) == 0, let p = CurveKey(z85: String(cString: pub)), let s = CurveKey(z85: String(cString: sec)) else {
      throw ClusterError("cannot generate a CURVE key pair (libzmq built without CURVE?)")
    }
    return (p, s)
  }

  /// The public key that belongs to this secret key.
  public func publicKey() throws -> CurveKey {
    var pub = [CChar](repeating: 0, count: 41)
    guard zmq_curve_public(&pub, z85) == 0, let p = CurveKey(z85: String(cString: pub)) else {
      throw ClusterError("cannot derive a public key")
    }
    return p
  }

  /// Reads a key file; a secret key file must not be readable by group or others. Errors are
  /// one line naming the file.
  public static func load(_ path: String, secret: Bool) throws -> CurveKey {
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, let data = FileManager.default.contents(atPath: path) else {
      throw ClusterError("\(path): cannot read the key file (missing or not a file)")
    }
    if secret && (st.st_mode & 0o077) != 0 {
      throw ClusterError(String(format: "%@: secret key is readable by others (mode %o): chmod 600 %@", path, st.st_mode & 0o777, path))
    }
    let text = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
      .first { !$0.isEmpty && !$0.hasPrefix("#") } ?? ""
    guard text.utf8.count == 40 else {
      throw ClusterError("\(path): not a CURVE key (expected 40 Z85 characters, found \(text.utf8.count))")
    }
    guard let key = CurveKey(z85: text) else { throw ClusterError("\(path): not a CURVE key (invalid Z85 text)") }
    return key
  }

  /// Writes the pair as NAME.key (secret, mode 0600) and NAME.pub in dir; returns both paths.
  public static func writePair(dir: String, name: String) throws -> (secret: String, public: String) {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let secretPath = (dir as NSString).appendingPathComponent(name + ".key")
    let publicPath = (dir as NSString).appendingPathComponent(name + ".pub")
    for p in [secretPath, publicPath] where FileManager.default.fileExists(atPath: p) {
      throw ClusterError("\(p) already exists: choose another --name or --out")
    }
    let (pub, sec) = try generatePair()
    // Created with mode 0600 from the start: never readable by others, not even briefly.
    let fd = open(secretPath, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    guard fd >= 0 else { throw ClusterError("\(secretPath): cannot create (\(String(cString: strerror(errno))))") }
    let text = "# igpt CURVE secret key: keep private\n\(sec.z85)\n"
    let ok = text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count && fsync(fd) == 0
    close(fd)
    guard ok else { throw ClusterError("\(secretPath): write failed") }
    try "\(pub.z85)\n".write(toFile: publicPath, atomically: true, encoding: .utf8)
    return (secretPath, publicPath)
  }
}

/// The keys a worker or operator uses to reach a coordinator over CURVE.
public struct ClientKeys: Sendable {
  public var secret: CurveKey
  public var server: CurveKey

  public init(secretFile: String, serverFile: String) throws {
    secret = try CurveKey.load(secretFile, secret: true)
    server = try CurveKey.load(serverFile, secret: false)
  }

  /// Makes a socket a CURVE client of the server (before connect).
  func apply(to socket: ZMQSocket) throws {
    try socket.set(ZMQ_CURVE_SERVERKEY, bytes: Array(server.z85.utf8))
    try socket.set(ZMQ_CURVE_PUBLICKEY, bytes: Array(try secret.publicKey().z85.utf8))
    try socket.set(ZMQ_CURVE_SECRETKEY, bytes: Array(secret.z85.utf8))
  }
}
