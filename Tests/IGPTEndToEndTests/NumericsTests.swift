import Foundation
import IGPTTestSupport
import Testing

/// One numerics per run: workers with other OpenBLAS kernels are pinned to the run's (and the
/// model stays byte-identical to `igpt train`), refused when they cannot be, or, with
/// `cluster.numerics: any`, accepted and the run marked not reproducible.
@Suite(.serialized) struct NumericsTests {
  /// The core type the coordinator loads here, and another one every AVX host runs.
  static func cores() throws -> (mine: String, other: String) {
    let info = try IGPTBinary.json(try IGPTBinary.run(["info", "--json"]).stdout)
    let mine = try #require(info["openblas_core"] as? String)
    return (mine, mine == "Sandybridge" ? "Prescott" : "Sandybridge")
  }

  static func state(_ run: String, step: Int) throws -> [String: Any] {
    let path = run + String(format: "/checkpoints/step-%08d/state.json", step)
    return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
  }

  @Test func aWorkerWithOtherKernelsIsPinnedAndTheModelIsIdentical() throws {
    let s = try ClusterTests.setUp("numerics-pin", steps: 400)  // long enough for the pinned worker to re-execute and join
    let (mine, other) = try Self.cores()
    let port = 5931
    let c = try ClusterProcess("c", ["coordinator", "--config", s.config, "--run", s.dir + "/pin", "--bind", "tcp://127.0.0.1:\(port)"],
                               logDir: s.dir)
    let w1 = try ClusterProcess("w1", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--name", "w1", "--give-up-after", "60"], logDir: s.dir)
    let w2 = try ClusterProcess("w2", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--name", "w2", "--give-up-after", "60"], logDir: s.dir,
                                environment: ["OPENBLAS_CORETYPE": other])
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(w1.wait(timeout: 10) == 0, "\(w1.log)")
    #expect(w2.wait(timeout: 10) == 0, "\(w2.log)")
    #expect(w2.log.contains("pinning this worker to OpenBLAS \(mine) kernels (it loaded \(other))"), "\(w2.log)")
    #expect(c.log.contains("pinning it to the run's \(mine)"), "\(c.log)")
    #expect(!w1.log.contains("pinning"))
    // the pinned worker really computed: both contributed microbatches
    #expect([w1, w2].allSatisfy { $0.log.contains("microbatches here") && !$0.log.contains("(0 microbatches") }, "\(w1.log)\(w2.log)")
    let last = s.dir + "/pin/checkpoints/" + String(format: "step-%08d", s.steps)
    #expect(FileManager.default.contents(atPath: last + "/model.safetensors") == s.reference.model, "\(c.log)")
    let numerics = try #require(try Self.state(s.dir + "/pin", step: s.steps)["numerics"] as? [String: Any])
    #expect(numerics["openblasCore"] as? String == mine && numerics["threads"] as? Int == 1, "\(numerics)")
  }

  /// cluster.openblas_core pins the coordinator itself (and `igpt train`); a worker whose CPU
  /// cannot run that core is refused in one line naming both numerics.
  @Test func theConfigsCoreIsPinnedAndAWorkerThatCannotRunItIsRefused() throws {
    let s = try ClusterTests.setUp("numerics-config", steps: 40)
    let (_, other) = try Self.cores()
    let config = s.dir + "/pinned.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8)
      .replacingOccurrences(of: "cluster: {", with: "cluster: {openblas_core: \(other), ")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let t = try IGPTBinary.run(["train", "--config", config, "--run", s.dir + "/reference-pinned"])
    #expect(t.status == 0 && t.stderr.contains("pinning to OpenBLAS \(other) kernels"), "\(t.stderr)")
    let port = 5933
    let c = try ClusterProcess("c", ["coordinator", "--config", config, "--run", s.dir + "/cfg", "--bind", "tcp://127.0.0.1:\(port)"],
                               logDir: s.dir)
    // a CPU (as its cpuinfo says) with AVX2 and AVX-512 but not AVX: it cannot run Sandybridge kernels
    let fake = s.dir + "/cpuinfo-no-avx"
    try "processor\t: 0\nflags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 fma f16c avx2 avx512f avx512bw avx512vl avx512dq avx512cd\n"
      .write(toFile: fake, atomically: true, encoding: .utf8)
    let refused = try ClusterProcess("refused", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"], logDir: s.dir,
                                     environment: ["IGPT_CPUINFO": fake])
    if other == "Sandybridge" {
      #expect(refused.wait(timeout: 60) == 2, "\(refused.log)")
      let line = refused.log.split(separator: "\n").first { $0.contains("refused by the coordinator") } ?? ""
      #expect(line.contains("cannot run the run's Sandybridge") && line.contains("worker: OpenBLAS ") && line.contains("run: OpenBLAS Sandybridge"),
              "\(refused.log)")
    }
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "60"], logDir: s.dir)
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(w.wait(timeout: 10) == 0, "\(w.log)")
    refused.wait(timeout: 10)
    #expect(c.log.contains("pinning to OpenBLAS \(other) kernels"), "\(c.log)")
    #expect(w.log.contains("pinning this worker to OpenBLAS \(other)"), "\(w.log)")
    let name = String(format: "/checkpoints/step-%08d/model.safetensors", s.steps)
    let reference = FileManager.default.contents(atPath: s.dir + "/reference-pinned" + name)
    #expect(reference != nil && FileManager.default.contents(atPath: s.dir + "/cfg" + name) == reference, "\(c.log)")
  }

  /// --resume keeps the run's recorded numerics: the resumed process pins itself to them, and
  /// refuses in one line what would change them.
  @Test func resumeKeepsTheRecordedNumerics() throws {
    let s = try ClusterTests.setUp("numerics-resume", steps: 40)
    let (_, other) = try Self.cores()
    let run = s.dir + "/r"
    let first = try IGPTBinary.run(["train", "--config", s.config, "--run", run, "--stop-at", "20"], environment: ["OPENBLAS_CORETYPE": other])
    #expect(first.status == 0, "\(first.stderr)")
    let threads = try IGPTBinary.run(["train", "--config", s.config, "--run", run, "--resume", "--threads", "2"])
    #expect(threads.status != 0 && threads.stderr.contains("train.threads is 2 but the run so far computed with 1 threads"), "\(threads.stderr)")
    let resumed = try IGPTBinary.run(["train", "--config", s.config, "--run", run, "--resume"])
    #expect(resumed.status == 0 && resumed.stderr.contains("pinning to OpenBLAS \(other) kernels"), "\(resumed.stderr)")
    let straight = try IGPTBinary.run(["train", "--config", s.config, "--run", s.dir + "/straight"], environment: ["OPENBLAS_CORETYPE": other])
    #expect(straight.status == 0)
    let name = String(format: "/checkpoints/step-%08d/model.safetensors", s.steps)
    #expect(FileManager.default.contents(atPath: run + name) == FileManager.default.contents(atPath: s.dir + "/straight" + name))
  }

  /// A coordinator resumed under other kernels pins itself (and its workers) to the recorded
  /// ones: the resumed run is byte-identical to `igpt train` on those kernels throughout.
  @Test func aResumedCoordinatorKeepsTheRecordedNumerics() throws {
    let s = try ClusterTests.setUp("numerics-coordinator-resume", steps: 400)
    let (_, other) = try Self.cores()
    let port = 5937
    let run = s.dir + "/cr"
    let args = ["coordinator", "--config", s.config, "--run", run, "--bind", "tcp://127.0.0.1:\(port)"]
    let c1 = try ClusterProcess("c1", args, logDir: s.dir, environment: ["OPENBLAS_CORETYPE": other])
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "60"], logDir: s.dir)
    #expect(ClusterProcess.waitFor(timeout: 60) { ClusterProcess.loggedStep(runDir: run) >= 30 }, "\(c1.log)")
    c1.kill(SIGTERM)
    #expect(c1.wait(timeout: 30) == 0, "\(c1.log)")
    let c2 = try ClusterProcess("c2", args + ["--resume"], logDir: s.dir)
    #expect(c2.wait(timeout: 120) == 0, "\(c2.log)")
    #expect(w.wait(timeout: 10) == 0, "\(w.log)")
    #expect(c2.log.contains("pinning to OpenBLAS \(other) kernels"), "\(c2.log)")
    #expect(w.log.contains("pinning this worker to OpenBLAS \(other)"), "\(w.log)")
    let t = try IGPTBinary.run(["train", "--config", s.config, "--run", s.dir + "/straight"], environment: ["OPENBLAS_CORETYPE": other])
    #expect(t.status == 0)
    let name = String(format: "/checkpoints/step-%08d/model.safetensors", s.steps)
    let reference = FileManager.default.contents(atPath: s.dir + "/straight" + name)
    #expect(reference != nil && FileManager.default.contents(atPath: run + name) == reference, "\(c2.log)")
  }

  /// numerics: any accepts the worker as it is; it contributes, and the run says it is not
  /// reproducible (state.json, metrics, status).
  @Test func anyAcceptsOtherKernelsAndMarksTheRunNotReproducible() throws {
    let s = try ClusterTests.setUp("numerics-any", steps: 400)
    let (_, other) = try Self.cores()
    let config = s.dir + "/any.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "cluster: {", with: "cluster: {numerics: any, ")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let port = 5935
    let c = try ClusterProcess("c", ["coordinator", "--config", config, "--run", s.dir + "/any", "--bind", "tcp://127.0.0.1:\(port)"],
                               logDir: s.dir)
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "60"], logDir: s.dir,
                               environment: ["OPENBLAS_CORETYPE": other])
    #expect(ClusterProcess.waitFor(timeout: 60) {
      let st = try? IGPTBinary.run(["status", "--coordinator", "tcp://127.0.0.1:\(port)"])
      return st?.stdout.contains("NOT REPRODUCIBLE") == true
    }, "\(c.log)")
    #expect(c.wait(timeout: 120) == 0, "\(c.log)")
    #expect(w.wait(timeout: 10) == 0, "\(w.log)")
    #expect(!w.log.contains("pinning") && w.log.contains("microbatches here") && !w.log.contains("(0 microbatches"), "\(w.log)")
    #expect(c.log.contains("run marked NOT reproducible"), "\(c.log)")
    #expect(try Self.state(s.dir + "/any", step: s.steps)["reproducible"] as? Bool == false)
    let metrics = try String(contentsOfFile: s.dir + "/any/metrics.jsonl", encoding: .utf8)
    #expect(metrics.contains("\"reproducible\":false"))
  }
}
