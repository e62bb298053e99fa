import Foundation
import IGPTTestSupport
import Testing

/// What a mistyped or malicious input gets: one line, a non-zero exit, nothing left behind,
/// quickly and in little memory, because sizes are checked before anything is allocated.
@Suite struct HostileInputTests {
  struct Measured {
    let status: Int32
    let stderr: String
    let seconds: Double
    /// Peak resident set of the process itself (wait4's rusage), in bytes.
    let peakBytes: Int
  }

  /// Runs igpt and measures that one process (not every child this test process ever had).
  static func measure(_ args: [String]) throws -> Measured {
    let errPath = Fixtures.directory("hostile-stderr") + "/stderr"
    var actions: posix_spawn_file_actions_t = .init()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let argv = ([IGPTBinary.url.path] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let start = Date()
    guard posix_spawn(&pid, IGPTBinary.url.path, &actions, nil, argv, environ) == 0 else { throw SpawnFailed() }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    let seconds = Date().timeIntervalSince(start)
    let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return Measured(status: (status >> 8) & 0xFF, stderr: stderr, seconds: seconds, peakBytes: usage.ru_maxrss * 1024)
  }

  /// One line, non-zero, under 2 s and 1 GB, naming what `expected` says.
  func expectRefused(_ m: Measured, _ expected: String, _ what: String) {
    let lines = m.stderr.split(separator: "\n")
    #expect(m.status != 0, "\(what): exit \(m.status)")
    #expect(lines.count == 1 && m.stderr.contains(expected), "\(what): \(m.stderr)")
    #expect(m.seconds < 2, "\(what): \(m.seconds) s")
    #expect(m.peakBytes < 1 << 30, "\(what): peak \(m.peakBytes) bytes")
  }

  @Test func sizesBeyondTheHostOrTheDataAreRefusedBeforeAnythingIsBuilt() throws {
    let dir = Fixtures.directory("hostile")
    let src = dir + "/src"
    Fixtures.folderDataset(at: src + "/train", classes: ["a", "b"], perClass: 6, side: 8)
    let store = dir + "/store"
    #expect(try IGPTBinary.run(["prepare", "--dataset", src, "--resolution", "8", "--palette", "4", "--out", store]).status == 0)
    func config(_ name: String, _ model: String, _ train: String) throws -> String {
      let path = dir + "/\(name).yaml"
      try "model: {\(model), objective: ar}\ndata: {store: \(store)}\ntrain: {steps: 2, \(train), val_every: 0}\n"
        .write(toFile: path, atomically: true, encoding: .utf8)
      return path
    }
    let huge = try config("huge", "layers: 99999999, embd: 99999999, heads: 1", "batch: 4, microbatch: 4")
    expectRefused(try Self.measure(["train", "--config", huge, "--run", dir + "/r1"]), "layers must be in 1...4096", "huge layers")
    let wide = try config("wide", "layers: 4000, embd: 60000, heads: 1", "batch: 4, microbatch: 4")
    expectRefused(try Self.measure(["train", "--config", wide, "--run", dir + "/r2"]), "of memory; this host has", "wide model")
    let batch = try config("batch", "layers: 1, embd: 16, heads: 2", "batch: 100000000, microbatch: 100000000")
    expectRefused(try Self.measure(["train", "--config", batch, "--run", dir + "/r3"]), "larger than the train split (", "batch")
    // what fits with more memory than the host says it has is refused under --max-memory
    let small = try config("small", "layers: 1, embd: 16, heads: 2", "batch: 4, microbatch: 4")
    expectRefused(try Self.measure(["train", "--config", small, "--run", dir + "/r4", "--max-memory", "1K"]), "this host has", "--max-memory")
    for r in ["r1", "r2", "r3", "r4"] { #expect(!FileManager.default.fileExists(atPath: dir + "/" + r), "\(r) left behind") }
    expectRefused(try Self.measure(["bench", "--seq", "100000", "--batch", "100000"]), "a training step of 100000 x 100000 tokens needs", "bench")
    // a real checkpoint, asked for far too many samples
    #expect(try IGPTBinary.run(["train", "--config", small, "--run", dir + "/ok"]).status == 0)
    expectRefused(try Self.measure(["sample", "--checkpoint", dir + "/ok", "--count", "100000000", "--out", dir + "/s.png"]),
                  "sampling 100000000 images needs", "sample")
    #expect(!FileManager.default.fileExists(atPath: dir + "/s.png"))
    // a folder whose decoded images would not fit: refused before decoding them
    expectRefused(try Self.measure(["prepare", "--dataset", src, "--resolution", "8", "--palette", "4", "--out", dir + "/s2", "--max-memory", "100"]),
                  "decoding 12 images of 8x8", "prepare")
    #expect(!FileManager.default.fileExists(atPath: dir + "/s2"))
  }

  /// Eight levels of ten aliases would expand to 10^8 nodes: refused before YAML expands them.
  @Test func configsWithAliasesOrTooLargeAreRefusedUnexpanded() throws {
    let dir = Fixtures.directory("hostile-yaml")
    var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in 1...8 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]") }
    try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/alias.yaml", atomically: true, encoding: .utf8)
    expectRefused(try Self.measure(["train", "--config", dir + "/alias.yaml", "--run", dir + "/r"]), "anchors and aliases", "aliases")
    try String(repeating: "# padding\n", count: 200_000).write(toFile: dir + "/big.yaml", atomically: true, encoding: .utf8)
    expectRefused(try Self.measure(["train", "--config", dir + "/big.yaml", "--run", dir + "/r"]), "more than a run config may have", "size")
    #expect(!FileManager.default.fileExists(atPath: dir + "/r"))
  }
}

struct SpawnFailed: Error {}
