import Foundation
import IGPTTestSupport
import Testing

/// CURVE + ZAP with real processes: only allow-listed keys get in, and nothing readable crosses the wire.
@Suite(.serialized) struct SecurityTests {
  /// Keys for the coordinator, a worker, an operator and an intruder; allow/ holds the worker's
  /// and the operator's public keys.
  struct Keys {
    let dir: String
    var allow: String { dir + "/allow" }
    func secret(_ n: String) -> String { dir + "/\(n).key" }
    func pub(_ n: String) -> String { dir + "/\(n).pub" }
  }

  static func keys(_ name: String) throws -> Keys {
    let k = Keys(dir: Fixtures.directory(name))
    for n in ["coordinator", "w1", "op", "intruder", "late"] {
      let r = try IGPTBinary.run(["keys", "generate", "--out", k.dir, "--name", n])
      guard r.status == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
    try FileManager.default.createDirectory(atPath: k.allow, withIntermediateDirectories: true)
    for n in ["w1", "op"] { try FileManager.default.copyItem(atPath: k.pub(n), toPath: k.allow + "/\(n).pub") }
    return k
  }

  func worker(_ s: ClusterTests.Setup, port: Int, name: String, keyArgs: [String], giveUp: String = "60") throws -> ClusterProcess {
    try ClusterProcess(name, ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--name", name, "--give-up-after", giveUp] + keyArgs,
                       logDir: s.dir)
  }

  @Test func keyFilesAreCheckedAndShown() throws {
    let k = try Self.keys("sec-keys")
    var st = stat()
    stat(k.secret("w1"), &st)
    #expect(st.st_mode & 0o777 == 0o600)
    let fromSecret = try IGPTBinary.run(["keys", "show", k.secret("w1")])
    let fromPublic = try IGPTBinary.run(["keys", "show", k.pub("w1")])
    #expect(fromSecret.status == 0 && fromSecret.stdout.count == 41 && fromSecret.stdout == fromPublic.stdout)
    let again = try IGPTBinary.run(["keys", "generate", "--out", k.dir, "--name", "w1"])
    #expect(again.status != 0 && again.stderr.contains("already exists"))
    // a readable secret key, a malformed key, and a key of the wrong size: one line naming the file
    let open = k.dir + "/open.key"
    try FileManager.default.copyItem(atPath: k.secret("op"), toPath: open)
    chmod(open, 0o644)
    let bad = k.dir + "/bad.pub"
    try "this is not a key at all, not even close!\n".write(toFile: bad, atomically: true, encoding: .utf8)
    let short = k.dir + "/short.pub"
    try "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n".prefix(30).write(toFile: short, atomically: true, encoding: .utf8)
    for (secret, server, expected) in [(open, k.pub("coordinator"), "readable by others"), (k.secret("op"), bad, "not a CURVE key"),
                                       (k.secret("op"), short, "expected 40 Z85 characters")] {
      let r = try IGPTBinary.run(["worker", "--connect", "tcp://127.0.0.1:5799", "--secret-key", secret, "--server-key", server])
      #expect(r.status != 0 && r.stderr.contains(expected), "\(r.stderr)")
      let file = expected == "readable by others" ? secret : server
      #expect(r.stderr.contains(file) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
  }

  @Test func onlyAllowListedWorkersTouchTheModel() throws {
    let s = try ClusterTests.setUp("sec-allow")
    let k = try Self.keys("sec-allow-keys")
    let port = 5801
    let c = try ClusterProcess("coordinator", ["coordinator", "--config", s.config, "--run", s.dir + "/c", "--bind", "tcp://127.0.0.1:\(port)",
                                               "--secret-key", k.secret("coordinator"), "--allow", k.allow], logDir: s.dir)
    // intruders first, so they would get the first parameters if they could
    let unknown = try worker(s, port: port, name: "unknown", keyArgs: ["--secret-key", k.secret("intruder"), "--server-key", k.pub("coordinator")], giveUp: "3")
    let nokey = try worker(s, port: port, name: "nokey", keyArgs: [], giveUp: "3")
    let wrongServer = try worker(s, port: port, name: "wrongserver", keyArgs: ["--secret-key", k.secret("w1"), "--server-key", k.pub("op")], giveUp: "3")
    // an operator whose key is not allow-listed cannot even ask for the status
    let denied = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:\(port)", "--timeout", "2",
                                     "--secret-key", k.secret("intruder"), "--server-key", k.pub("coordinator")])
    #expect(denied.status != 0 && denied.stderr.contains("no answer"))
    let allowed = try IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:\(port)", "--secret-key", k.secret("op"),
                                      "--server-key", k.pub("coordinator")])
    #expect(allowed.status == 0 && allowed.stdout.contains("CURVE"), "\(allowed.stderr)")
    let good = try worker(s, port: port, name: "good", keyArgs: ["--secret-key", k.secret("w1"), "--server-key", k.pub("coordinator")])
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(good.wait(timeout: 10) == 0, "\(good.log)")
    for w in [unknown, nokey, wrongServer] {
      #expect(w.wait(timeout: 30) == 1, "\(w.name): \(w.log)")
      #expect(!w.log.contains("working for run"), "\(w.name) got in: \(w.log)")
    }
    #expect(!c.log.contains("worker unknown") && !c.log.contains("worker nokey") && !c.log.contains("worker wrongserver"))
    #expect(c.log.contains("not on the allow-list"))
    let last = s.dir + "/c/checkpoints/" + String(format: "step-%08d", s.steps)
    #expect(FileManager.default.contents(atPath: last + "/model.safetensors") == s.reference.model)
  }

  @Test func sighupAdmitsANewlyAllowedWorker() throws {
    let s = try ClusterTests.setUp("sec-hup")
    let k = try Self.keys("sec-hup-keys")
    let port = 5811
    let c = try ClusterProcess("coordinator", ["coordinator", "--config", s.config, "--run", s.dir + "/c", "--bind", "tcp://127.0.0.1:\(port)",
                                               "--secret-key", k.secret("coordinator"), "--allow", k.allow, "--steps", "100000"], logDir: s.dir)
    defer { c.kill() }
    let w1 = try worker(s, port: port, name: "w1", keyArgs: ["--secret-key", k.secret("w1"), "--server-key", k.pub("coordinator")])
    defer { w1.kill() }
    let late = try worker(s, port: port, name: "late", keyArgs: ["--secret-key", k.secret("late"), "--server-key", k.pub("coordinator")])
    defer { late.kill() }
    #expect(ClusterProcess.waitFor(timeout: 30) { c.log.contains("worker w1 joined") && c.log.contains("not on the allow-list") })
    #expect(!c.log.contains("worker late joined"))
    try FileManager.default.copyItem(atPath: k.pub("late"), toPath: k.allow + "/late.pub")
    c.kill(SIGHUP)
    #expect(ClusterProcess.waitFor(timeout: 30) { c.log.contains("worker late joined") }, "\(c.log)\n\(late.log)")
    #expect(c.log.contains("allow-list reloaded"))
    c.kill(SIGTERM)
    #expect(c.wait(timeout: 30) == 0)
  }

  /// Records a short run through a relay and returns what crossed the wire.
  func capture(_ s: ClusterTests.Setup, port: Int, relay: Int, coordinatorKeys: [String], workerKeys: [String]) throws -> (bytes: Data, parameters: Int) {
    let recorder = try TCPRecorder(port: UInt16(relay), target: UInt16(port))
    defer { recorder.close() }
    let c = try ClusterProcess("coordinator-\(port)", ["coordinator", "--config", s.config, "--run", s.dir + "/wire\(port)", "--bind",
                                                       "tcp://127.0.0.1:\(port)", "--steps", "10"] + coordinatorKeys, logDir: s.dir)
    let w = try worker(s, port: relay, name: "wire\(port)", keyArgs: workerKeys)
    #expect(c.wait(timeout: 60) == 0, "\(c.log)")
    w.wait(timeout: 10)
    let n = c.log.components(separatedBy: " parameters").first?.split(separator: " ").last.flatMap { Int($0) } ?? 0
    try #require(n > 0, "no parameter count in: \(c.log)")
    return (recorder.bytes, n)
  }

  @Test func nothingReadableOnTheWireWithKeys() throws {
    let s = try ClusterTests.setUp("sec-wire")
    let k = try Self.keys("sec-wire-keys")
    let (plain, n) = try capture(s, port: 5821, relay: 5822, coordinatorKeys: [], workerKeys: [])
    let (sealed, _) = try capture(s, port: 5823, relay: 5824, coordinatorKeys: ["--secret-key", k.secret("coordinator"), "--allow", k.allow],
                             workerKeys: ["--secret-key", k.secret("w1"), "--server-key", k.pub("coordinator")])
    // Without keys the frames, their JSON and the model shape are in the clear; with keys none of it.
    // The parameter payload's own header (codec 1, then the parameter count) marks parameter bytes.
    var parameterHeader = Data([1])
    withUnsafeBytes(of: UInt64(n).littleEndian) { parameterHeader.append(contentsOf: $0) }
    let markers = ["IGPT", "\"runHash\"", "\"heartbeatInterval\"", "\"losses\""].map { Data($0.utf8) } + [parameterHeader]
    #expect(plain.count > 100_000 && sealed.count > 100_000)
    for m in markers {
      #expect(plain.range(of: m) != nil, "plaintext run lacks \(String(decoding: m, as: UTF8.self))")
      #expect(sealed.range(of: m) == nil, "encrypted run shows \(String(decoding: m, as: UTF8.self))")
    }
  }
}

extension SecurityTests {
  @Test func anUnlistedOperatorCannotQueueAProbe() throws {
    let s = try ClusterTests.setUp("sec-probe")
    let k = try Self.keys("sec-probe-keys")
    let port = 5831
    let c = try ClusterProcess("coordinator", ["coordinator", "--config", s.config, "--run", s.dir + "/c", "--bind", "tcp://127.0.0.1:\(port)",
                                               "--secret-key", k.secret("coordinator"), "--allow", k.allow], logDir: s.dir)
    defer { c.kill() }
    let denied = try IGPTBinary.run(["probe", "submit", "--coordinator", "tcp://127.0.0.1:\(port)", "--timeout", "2",
                                     "--secret-key", k.secret("intruder"), "--server-key", k.pub("coordinator")])
    #expect(denied.status != 0 && denied.stderr.contains("no answer"), "\(denied.stderr)")
    let listed = try IGPTBinary.run(["probe", "list", "--coordinator", "tcp://127.0.0.1:\(port)", "--json",
                                     "--secret-key", k.secret("op"), "--server-key", k.pub("coordinator")])
    #expect(listed.status == 0 && listed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(listed.stdout)\(listed.stderr)")
    let allowed = try IGPTBinary.run(["probe", "submit", "--coordinator", "tcp://127.0.0.1:\(port)", "--layers", "1",
                                      "--secret-key", k.secret("op"), "--server-key", k.pub("coordinator")])
    #expect(allowed.status == 0 && allowed.stdout.contains("queued probe 1"), "\(allowed.stderr)")
    #expect(!FileManager.default.contents(atPath: s.dir + "/c/probe-jobs.json").map { String(decoding: $0, as: UTF8.self) }!.contains("\"id\" : 2"))
  }
}
