import CZeroMQ
import Foundation

/// The coordinator's ZeroMQ authentication handler (ZAP, RFC 27): admits a CURVE client only
/// when its public key is on the allow-list. Without a handler bound, libzmq would admit any
/// client that knows the server's public key (platform-notes.md).
///
/// The allow-list is a key file or a directory of them (*.pub, or any file holding one Z85
/// public key per line); `reload()` re-reads it (SIGHUP).
public final class ZAPHandler {
  let socket: ZMQSocket
  public let allowPath: String
  public private(set) var allowed: Set<CurveKey> = []
  /// Refusals already logged (key + address), so each is logged once.
  private var reported: Set<String> = []
  private let log: (String) -> Void

  /// Binds the handler (before any CURVE server socket binds) and loads the allow-list.
  public init(allowPath: String, log: @escaping (String) -> Void) throws {
    self.allowPath = allowPath
    self.log = log
    allowed = try Self.readAllowList(allowPath)
    socket = try ZMQSocket(.rep)
    try socket.bind("inproc://zeromq.zap.01")
  }

  /// Re-reads the allow-list; on error the old list stays and the error is returned.
  @discardableResult
  public func reload() -> String? {
    do {
      allowed = try Self.readAllowList(allowPath)
      reported = []
      return nil
    } catch { return "\(error)" }
  }

  /// Answers every waiting authentication request.
  public func serve() {
    while let r = socket.receive() {
      guard let d = Self.decide(r.frames, allowed: allowed) else { continue }
      if let refusal = d.refusal, reported.insert(refusal.once).inserted { log(line(refusal)) }
      socket.send(d.reply)
    }
  }

  func line(_ r: Refusal) -> String {
    switch r {
    case .keyNotAllowed(let address, let key):
      return "refused a CURVE client from \(address): key \(key.z85) is not on the allow-list (\(allowPath))"
    case .notCurve(let address, let mechanism):
      return "refused a client from \(address): it offered \(mechanism), this coordinator requires CURVE keys"
    }
  }

  /// Why a client was refused.
  public enum Refusal: Equatable {
    case keyNotAllowed(address: String, key: CurveKey)
    case notCurve(address: String, mechanism: String)

    /// What makes two refusals the same for logging (each is logged once).
    var once: String {
      switch self {
      case .keyNotAllowed(let a, let k): return k.z85 + a
      case .notCurve(let a, let m): return m + a
      }
    }
  }

  /// The answer to one request: the reply frames, and why the client was refused if it was.
  public struct Decision: Equatable {
    public var reply: [Data]
    public var refusal: Refusal?
  }

  /// Decides one ZAP request (RFC 27 frames: version, request id, domain, address, identity,
  /// mechanism, credentials...): 200 only for a CURVE client whose key is allowed. Nil for a
  /// request too short to answer.
  public static func decide(_ f: [Data], allowed: Set<CurveKey>) -> Decision? {
    guard f.count >= 6 else { return nil }
    let address = String(decoding: f[3], as: UTF8.self)
    let mechanism = String(decoding: f[5], as: UTF8.self)
    var status = "400", text = "not allowed", user = ""
    var refusal: Refusal?
    if mechanism == "CURVE", f.count >= 7, let key = CurveKey(bytes: [UInt8](f[6])) {
      if allowed.contains(key) { (status, text, user) = ("200", "OK", key.z85) }
      else { refusal = .keyNotAllowed(address: address, key: key) }
    } else {
      refusal = .notCurve(address: address, mechanism: mechanism)
    }
    return Decision(reply: [Data("1.0".utf8), f[1], Data(status.utf8), Data(text.utf8), Data(user.utf8), Data()], refusal: refusal)
  }

  /// The public keys in a file, or in every regular file of a directory; errors name the file.
  public static func readAllowList(_ path: String) throws -> Set<CurveKey> {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw ClusterError("\(path): allow-list not found (a public key file or a directory of them)")
    }
    let files = isDir.boolValue
      ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().filter { !$0.hasPrefix(".") && !$0.hasSuffix(".key") }
        .map { (path as NSString).appendingPathComponent($0) }
      : [path]
    var keys: Set<CurveKey> = []
    for file in files {
      guard let data = FileManager.default.contents(atPath: file) else { continue }
      for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.isEmpty || t.hasPrefix("#") { continue }
        guard let k = CurveKey(z85: t) else { throw ClusterError("\(file):\(n + 1): not a CURVE public key (expected 40 Z85 characters)") }
        keys.insert(k)
      }
    }
    return keys
  }
}
