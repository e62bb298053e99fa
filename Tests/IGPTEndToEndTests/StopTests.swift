import Foundation
import IGPTTestSupport
import Testing

/// SIGTERM ends a command within 2 s in its long phases, not only between training steps,
/// leaving nothing half-written.
@Suite(.serialized) struct StopTests {
  /// 100,000 28x28 random images: a prepare of several seconds, steps of seconds at this size.
  static func bigStore() throws -> (src: String, store: String, dir: String) {
    let dir = Fixtures.directory("stop")
    let src = dir + "/idx"
    try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
    _ = Fixtures.idxDataset(at: src, n: 100_000, nTest: 500, side: 28, gzipped: false)
    let store = dir + "/store"
    let p = try IGPTBinary.run(["prepare", "--dataset", src, "--resolution", "28", "--palette", "16", "--out", store])
    guard p.status == 0 else { throw SpawnFailed() }
    return (src, store, dir)
  }

  /// Starts igpt, sends SIGTERM after `after` seconds, and returns (exit status, seconds from the signal to the exit).
  static func terminate(_ args: [String], after: Double) throws -> (status: Int32, seconds: Double, stillRunning: Bool) {
    let p = Process()
    p.executableURL = IGPTBinary.url
    p.arguments = args
    p.standardError = FileHandle.nullDevice
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    Thread.sleep(forTimeInterval: after)
    let running = p.isRunning
    let sent = Date()
    kill(p.processIdentifier, SIGTERM)
    p.waitUntilExit()
    return (p.terminationStatus, Date().timeIntervalSince(sent), running)
  }

  func leftovers(_ dir: String) -> [String] {
    ((try? FileManager.default.subpathsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }
  }

  @Test func sigtermInLongPhasesEndsWithinTwoSeconds() throws {
    let (src, store, dir) = try Self.bigStore()
    // prepare, while it resizes and quantises: no store, no temporary directory
    let p = try Self.terminate(["prepare", "--dataset", src, "--resolution", "28", "--palette", "16", "--out", dir + "/again"], after: 1.5)
    #expect(p.stillRunning && p.seconds < 2 && p.status != 0, "\(p)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/again") && leftovers(dir).isEmpty, "\(leftovers(dir))")
    // train, inside a step of several seconds: ends without waiting for the step
    let config = dir + "/slow.yaml"
    try "model: {layers: 4, embd: 256, heads: 4, objective: ar}\ndata: {store: \(store)}\ntrain: {steps: 5, batch: 32, microbatch: 32, val_every: 0}\n"
      .write(toFile: config, atomically: true, encoding: .utf8)
    let t = try Self.terminate(["train", "--config", config, "--run", dir + "/slow"], after: 2)
    #expect(t.stillRunning && t.seconds < 2 && t.status != 0, "\(t)")
    #expect(leftovers(dir).isEmpty)
    // probe run, in its feature passes
    let tiny = dir + "/tiny.yaml"
    try "model: {layers: 2, embd: 32, heads: 2, objective: ar}\ndata: {store: \(store)}\ntrain: {steps: 1, batch: 4, microbatch: 4, val_every: 0}\n"
      .write(toFile: tiny, atomically: true, encoding: .utf8)
    #expect(try IGPTBinary.run(["train", "--config", tiny, "--run", dir + "/tiny"]).status == 0)
    let r = try Self.terminate(["probe", "run", "--checkpoint", dir + "/tiny", "--out", dir + "/probe.json"], after: 1.5)
    #expect(r.stillRunning && r.seconds < 2 && r.status != 0, "\(r)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/probe.json"))
  }

  /// The coordinator waiting for workers, and coordinator and worker in a step of seconds: each
  /// ends within 2 s of SIGTERM (the coordinator after checkpointing the step it is at).
  @Test func sigtermEndsCoordinatorAndWorkerWithinTwoSeconds() throws {
    let dir = Fixtures.directory("stopcluster")
    try FileManager.default.createDirectory(atPath: dir + "/idx", withIntermediateDirectories: true)
    _ = Fixtures.idxDataset(at: dir + "/idx", n: 2_000, nTest: 100, side: 28, gzipped: false)
    #expect(try IGPTBinary.run(["prepare", "--dataset", dir + "/idx", "--resolution", "28", "--palette", "16", "--out", dir + "/store"]).status == 0)
    let config = dir + "/slow.yaml"
    try "model: {layers: 4, embd: 256, heads: 4, objective: ar}\ndata: {store: \(dir)/store}\ntrain: {steps: 5, batch: 32, microbatch: 8, val_every: 0}\ncheckpoint: {every: 5}\n"
      .write(toFile: config, atomically: true, encoding: .utf8)
    let endpoint = "tcp://127.0.0.1:5961"
    // waiting for workers
    let idle = try Self.terminate(["coordinator", "--config", config, "--run", dir + "/idle", "--bind", endpoint], after: 2)
    #expect(idle.stillRunning && idle.seconds < 2, "\(idle)")
    // a worker computing the first step's microbatches
    let c = try ClusterProcess("coordinator", ["coordinator", "--config", config, "--run", dir + "/busy", "--bind", endpoint], logDir: dir)
    let w = try ClusterProcess("worker", ["worker", "--connect", endpoint, "--name", "w", "--give-up-after", "5"], logDir: dir)
    defer { c.kill(); w.kill() }
    #expect(ClusterProcess.waitFor(timeout: 30) { c.log.contains("worker w joined") }, "\(c.log)")
    Thread.sleep(forTimeInterval: 1)
    var sent = Date()
    c.kill(SIGTERM)
    #expect(c.wait(timeout: 10) != nil && Date().timeIntervalSince(sent) < 2, "\(c.log)")
    #expect(c.log.contains("stopped by SIGTERM"), "\(c.log)")
    #expect(w.process.isRunning, "\(w.log)")
    sent = Date()
    w.kill(SIGTERM)
    #expect(w.wait(timeout: 10) != nil && Date().timeIntervalSince(sent) < 2, "\(w.log)")
    #expect(leftovers(dir).isEmpty, "\(leftovers(dir))")
  }
}
