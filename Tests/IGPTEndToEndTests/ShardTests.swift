import Foundation
import IGPTCluster
import IGPTTestSupport
import Testing

/// Parameter-server shards as real processes on loopback: with 1, 2 or 4 of them the model is
/// byte-identical to `igpt train`'s, with a worker killed and another joining; a shard killed
/// mid-run stops the run, and restarting it and the coordinator with --resume gives the same bytes.
@Suite(.serialized) struct ShardTests {
  let cluster = ClusterTests()

  func shard(_ s: ClusterTests.Setup, port: Int, own: Int, name: String) throws -> ClusterProcess {
    try ClusterProcess(name, ["server", "--connect", "tcp://127.0.0.1:\(port)", "--bind", "tcp://127.0.0.1:\(own)", "--name", name,
                              "--give-up-after", "60"], logDir: s.dir)
  }

  @Test(arguments: [1, 2, 4])
  func shardsTrainTheModelOneProcessTrains(shards k: Int) throws {
    // a clip every step hits: the update depends on the global norm the shards' partials give
    let s = try ClusterTests.setUp("shards-\(k)", steps: 1200, clip: 0.05)
    let port = 5600 + 10 * k
    let c = try cluster.coordinator(s, run: "k", port: port, extra: ["--shards", "\(k)"])
    let servers = try (0..<k).map { try shard(s, port: port, own: 6200 + 10 * k + $0, name: "s\($0 + 1)") }
    let ws = try (1...2).map { try cluster.worker(s, port: port, name: "w\($0)") }
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/k") >= 40 }, "\(c.log)")
    ws[1].kill(SIGKILL)
    // the late worker starts at once: tiny steps are fast, and it must join well before the end
    let late = try cluster.worker(s, port: port, name: "late")
    #expect(ClusterProcess.waitFor(timeout: 60) { c.log.contains("worker late joined") }, "\(c.log)")
    let joinedAt = ClusterProcess.loggedStep(runDir: s.dir + "/k")
    #expect(joinedAt < s.steps - 200, "the late worker joined at step \(joinedAt) of \(s.steps)")
    #expect(c.wait(timeout: 180) == 0, "\(c.log)")
    for p in servers + [ws[0], late] { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
    #expect(ClusterProcess.events(runDir: s.dir + "/k", "shard_join").count == k)
    #expect(ClusterProcess.events(runDir: s.dir + "/k", "join").contains { $0["worker"] as? String == "late" })
    // the gradients went to the shards, not through the coordinator: it received well under one
    // gradient (~100 kB here) a step, but in the steps it pulled the shards' state for a checkpoint
    let steps = ClusterProcess.events(runDir: s.dir + "/k", "step")
    let large = steps.filter { ($0["wire_bytes_in"] as? Int ?? .max) >= 20_000 }
    #expect(steps.count == s.steps && large.count <= s.steps / 20, "\(large.count) steps received 20 kB or more")
    cluster.expectIdentical(s, run: "k", logs: [c] + servers + [ws[0], late])
    let norms = { (run: String) in ClusterProcess.stepRecords(runDir: s.dir + "/" + run).compactMap { $0["grad_norm"] as? Double } }
    #expect(norms("k").count == s.steps && norms("k") == norms("reference") && norms("k").allSatisfy { $0 > 0.05 })
  }

  /// Run "r" of `s` through a coordinator, two shards (on `shardPorts` and the next port) and two
  /// workers, once it has logged step 40.
  func runningWithTwoShards(_ s: ClusterTests.Setup, port: Int, shardPorts: Int) throws
    -> (coordinator: ClusterProcess, servers: [ClusterProcess], workers: [ClusterProcess])
  {
    let c = try cluster.coordinator(s, run: "r", port: port, extra: ["--shards", "2"])
    let servers = try [shard(s, port: port, own: shardPorts, name: "s1"), shard(s, port: port, own: shardPorts + 1, name: "s2")]
    let ws = try (1...2).map { try cluster.worker(s, port: port, name: "w\($0)") }
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/r") >= 40 }, "\(c.log)")
    return (c, servers, ws)
  }

  /// The whole host stalls (every process stopped for 3 s, three times the 1 s silence window,
  /// as a paused VM or a starved machine does): on waking no process counts that time as its
  /// peers' silence; the run goes on and gives the same bytes.
  @Test func aStallOfEveryProcessIsNotTakenForALostPeer() throws {
    let s = try ClusterTests.setUp("shards-stall", steps: 600)
    let (c, servers, ws) = try runningWithTwoShards(s, port: 5693, shardPorts: 6301)
    let all = [c] + servers + ws
    for p in all { p.kill(SIGSTOP) }
    sleep(3)
    for p in all { p.kill(SIGCONT) }
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    for p in servers + ws { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
    #expect(c.log.contains("this coordinator did not listen for"), "\(c.log)")
    #expect(ClusterProcess.events(runDir: s.dir + "/r", "shard_lost").isEmpty && ClusterProcess.events(runDir: s.dir + "/r", "dead").isEmpty)
    for p in servers { #expect(!p.log.contains("waiting to be restored again"), "\(p.log)") }
    cluster.expectIdentical(s, run: "r", logs: all)
  }

  /// The coordinator alone stopped for 3 s: its shards take it for gone, drop their state and
  /// say hello again. It has no copy of the steps since its last checkpoint (nor, stopped while
  /// writing one, of the step's gradient the shards were summing), so it says so and stops
  /// there (or, stopped before any of the step's work went out, restores them and goes on);
  /// never hangs, and --resume gives the same bytes.
  @Test(arguments: [false, true])
  func shardsThatDroppedTheirStateStopTheRunAndResumingGivesTheSameModel(whileCheckpointing: Bool) throws {
    let s = try ClusterTests.setUp("shards-forgot-\(whileCheckpointing)", steps: 600)
    let port = whileCheckpointing ? 5696 : 5694
    let (c1, servers, ws) = try runningWithTwoShards(s, port: port, shardPorts: whileCheckpointing ? 6305 : 6303)
    // a checkpoint is written after the step's gradient is summed, before its update: caught
    // there by its temporary directory (most times: a miss stops it elsewhere in a step)
    if whileCheckpointing { _ = ClusterProcess.waitFor(timeout: 5, poll: 0.0002) { Self.writingCheckpoint(s.dir + "/r/checkpoints") } }
    c1.kill(SIGSTOP)
    sleep(3)
    c1.kill(SIGCONT)
    let status = c1.wait(timeout: 120)
    #expect(status != nil, "the coordinator hung: \(c1.log)")
    var last = c1
    if status != 0 {
      #expect(c1.log.contains("lost its state: it said hello again at step") && c1.log.contains("restart the coordinator with --resume"), "\(c1.log)")
      #expect(ClusterProcess.events(runDir: s.dir + "/r", "shard_lost").count == 1)
      last = try cluster.coordinator(s, run: "r", port: port, extra: ["--shards", "2", "--resume"])
      #expect(last.wait(timeout: 120) == 0, "\(last.log)")
    }
    for p in servers + ws { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
    cluster.expectIdentical(s, run: "r", logs: [last] + servers + ws)
  }

  static func writingCheckpoint(_ dir: String) -> Bool {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).contains { $0.hasPrefix(".step-") && $0.contains(".tmp-") }
  }

  @Test func aKilledShardStopsTheRunAndResumingGivesTheSameModel() throws {
    let s = try ClusterTests.setUp("shards-kill", steps: 600)
    let port = 5691
    let c1 = try cluster.coordinator(s, run: "r", port: port, extra: ["--shards", "2"])
    let s1 = try shard(s, port: port, own: 6291, name: "s1")
    var s2 = try shard(s, port: port, own: 6292, name: "s2")
    let ws = try (1...2).map { try cluster.worker(s, port: port, name: "r\($0)") }
    #expect(ClusterProcess.waitFor(timeout: 60) { FileManager.default.fileExists(atPath: s.dir + "/r/checkpoints/step-00000040") })
    s2.kill(SIGKILL)
    #expect(c1.wait(timeout: 30).map { $0 != 0 } ?? false, "\(c1.log)")
    #expect(c1.log.contains("parameter-server shard") && c1.log.contains("lost") && c1.log.contains("--resume"), "\(c1.log)")
    #expect(ClusterProcess.events(runDir: s.dir + "/r", "shard_lost").count == 1)
    s2 = try shard(s, port: port, own: 6292, name: "s2-again")
    let c2 = try cluster.coordinator(s, run: "r", port: port, extra: ["--shards", "2", "--resume"])
    #expect(c2.wait(timeout: 120) == 0, "\(c2.log)")
    #expect(c2.log.contains("resumed from"))
    for p in [s1, s2] + ws { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
    cluster.expectIdentical(s, run: "r", logs: [c2, s1, s2] + ws)
  }

  /// With keys, a shard authenticates to the coordinator and serves only allow-listed workers:
  /// the run is the same bytes, and a client with another key gets nothing from the shard.
  @Test func keyedShardsServeOnlyAllowListedWorkers() throws {
    let s = try ClusterTests.setUp("shards-keys", steps: 600)
    let k = try SecurityTests.keys("shards-keys-k")
    try FileManager.default.copyItem(atPath: k.pub("late"), toPath: k.allow + "/shard.pub")  // "late" is the shard's key
    let port = 5695
    let c = try cluster.coordinator(s, run: "c", port: port, extra: ["--shards", "1", "--secret-key", k.secret("coordinator"), "--allow", k.allow])
    let shardLog = try ClusterProcess("shard", ["server", "--connect", "tcp://127.0.0.1:\(port)", "--bind", "tcp://127.0.0.1:6295", "--name", "s",
                                                "--secret-key", k.secret("late"), "--server-key", k.pub("coordinator"), "--allow", k.allow,
                                                "--give-up-after", "60"], logDir: s.dir)
    let w = try ClusterProcess("w1", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--name", "w1", "--give-up-after", "60",
                                      "--secret-key", k.secret("w1"), "--server-key", k.pub("coordinator")], logDir: s.dir)
    #expect(ClusterProcess.waitFor(timeout: 30) { ClusterProcess.loggedStep(runDir: s.dir + "/c") >= 5 }, "\(c.log)")
    // an intruder's key on the shard's socket: refused by its allow-list, no parameters
    let intruder = try ClusterClient(endpoint: "tcp://127.0.0.1:6295", keys: ClientKeys(secretFile: k.secret("intruder"), serverFile: k.pub("late")))
    #expect(throws: ClusterError.self) { _ = try intruder.request(Message(.fetch, version: 0), expecting: .params, timeout: 2) }
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    for p in [shardLog, w] { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
    #expect(shardLog.log.contains("refused a CURVE client"), "\(shardLog.log)")
    cluster.expectIdentical(s, run: "c", logs: [c, shardLog, w])
  }

  /// Garbage on a shard's worker socket (random bytes, other runs, blocks that are not the
  /// tree's, stale steps, far versions, kinds only the coordinator sends, oversize) is dropped
  /// or refused; the shard keeps serving and the model is unchanged.
  @Test func garbageOnAShardSocketChangesNothing() throws {
    let s = try ClusterTests.setUp("shards-garbage", steps: 600)
    let port = 5697
    let c = try cluster.coordinator(s, run: "g", port: port, extra: ["--shards", "1"])
    let server = try shard(s, port: port, own: 6297, name: "s")
    let w = try cluster.worker(s, port: port, name: "w")
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: s.dir + "/g") >= 5 }, "\(c.log)")
    let hex = try #require(server.log.split(separator: " ").drop { $0 != "run" }.dropFirst().first?.prefix { $0 != ":" })
    let run = try #require(UInt64(hex, radix: 16))
    let attacker = try ZMQSocket(.dealer)
    try attacker.connect("tcp://127.0.0.1:6297")
    let push = { (version: UInt64, micro: Int, n: Int, hash: UInt64) in
      Message(.push, runHash: hash, version: version, meta: Data("{\"micro\":\(micro),\"microbatches\":\(n),\"task\":1}".utf8), body: Data(repeating: 3, count: 64)).encode()
    }
    var rng = SystemRandomNumberGenerator()
    let garbage: [[Data]] = [
      [Data((0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) })], [Data()],
      [push(5, 0, 1, 42)],  // another run
      [push(1 << 40, 0, 1, run)],  // a step long gone or never to come
      [push(UInt64(ClusterProcess.loggedStep(runDir: s.dir + "/g")), 3, 7, run)],  // not a block of the tree
      [Message(.fetch, runHash: run, version: 1 << 50).encode()],  // a version it will never reach
      [Message(.update, runHash: run, version: 0).encode()],  // only the coordinator updates
      [push(0, 0, 1, run), push(0, 0, 1, run)],  // two frames
    ]
    for _ in 0..<20 { for g in garbage { attacker.send(g) } }
    attacker.send([Data(count: 8 << 20)])  // beyond the largest gradient slice
    // closing drops what is still queued (linger 0): keep the socket until the shard has read some
    #expect(ClusterProcess.waitFor(timeout: 30) { server.log.contains("dropped") }, "\(server.log)")
    attacker.close()
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    for p in [server, w] { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
    #expect(server.log.contains("dropped"), "\(server.log)")
    cluster.expectIdentical(s, run: "g", logs: [c, server, w])
  }

  /// bf16 gradients are encoded slice by slice with each slice's part of the worker's rounding
  /// residual: one worker with 2 shards trains the bytes one worker trains without shards.
  @Test func bf16GradientsInSlicesAreTheWholeGradientsBytes() throws {
    let s = try ClusterTests.setUp("shards-bf16", steps: 60)
    let config = s.dir + "/bf16.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8)
      .replacingOccurrences(of: "cluster: {", with: "cluster: {codec: bf16, ")
      .write(toFile: config, atomically: true, encoding: .utf8)
    var models: [Data?] = []
    for (run, k, port) in [("plain", 0, 5698), ("sharded", 2, 5699)] {
      let c = try ClusterProcess("coordinator-\(run)", ["coordinator", "--config", config, "--run", s.dir + "/" + run,
                                                         "--bind", "tcp://127.0.0.1:\(port)", "--shards", "\(k)"], logDir: s.dir)
      let servers = try (0..<k).map { try shard(s, port: port, own: 6398 + $0, name: "s\($0)") }
      let w = try cluster.worker(s, port: port, name: "w-\(run)")
      #expect(c.wait(timeout: 120) == 0, "\(c.log)")
      for p in servers + [w] { #expect(p.wait(timeout: 10) == 0, "\(p.log)") }
      models.append(FileManager.default.contents(atPath: s.dir + "/\(run)/checkpoints/step-00000060/model.safetensors"))
    }
    #expect(models[0] != nil && models[0] == models[1])
    #expect(models[0] != s.reference.model)  // bf16 really was on: not the lossless bytes
  }

  /// `igpt bench-cluster`: a real coordinator, shards and emulated workers; every worker in from
  /// the first timed step (--wait-for), gradients through the coordinator only without shards.
  @Test func benchClusterMeasuresTheClusterWithEmulatedWorkers() throws {
    let r = try IGPTBinary.run(["bench-cluster", "--layers", "2", "--embd", "64", "--heads", "2", "--workers", "1,2", "--shards", "0,2",
                                "--steps", "3", "--port", "5950"])
    #expect(r.status == 0, "\(r.stderr)")
    let rows = r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    #expect(rows.map { "\($0["shards"] ?? "?")/\($0["workers"] ?? "?")" } == ["0/1", "0/2", "2/1", "2/2"], "\(r.stdout)")
    for row in rows {
      let workers = row["workers"] as? Int ?? 0, gradient = row["gradient_bytes"] as? Int ?? 0
      #expect(row["timed_steps"] as? Int == 2 && (row["steps_per_s"] as? Double ?? 0) > 0)
      #expect(row["gradients_per_step"] as? Double == Double(workers), "\(row)")  // 32 microbatches: one block each
      if row["shards"] as? Int == 0 {
        #expect((row["bytes_in_per_step"] as? Int ?? 0) >= workers * gradient && row["shard_peak_rss_mb"] == nil)
      } else {
        #expect((row["bytes_in_per_step"] as? Int ?? .max) < gradient / 10 && (row["shard_peak_rss_mb"] as? Int ?? 0) > 0, "\(row)")
      }
    }
    let bad = try IGPTBinary.run(["bench-cluster", "--workers", "0"])
    #expect(bad.status != 0 && bad.stderr.contains("--workers 0"))
  }
}
