import Foundation
import IGPTTestSupport
import Testing
import IGPTKernels

/// The igpt binary started as a user would start it.
@Suite(.serialized) struct BinaryTests {
  /// Started without OPENBLAS_CORETYPE, igpt re-executes itself with the core type chosen from
  /// the CPU's features and ends up on those kernels, never on the generic fallback.
  @Test func picksOpenBLASKernelsByItself() throws {
    let r = try IGPTBinary.run(["info", "--json"], environment: ["OPENBLAS_CORETYPE": nil])
    #expect(r.status == 0)
    let info = try IGPTBinary.json(r.stdout)
    let chosen = OpenBLASCoreType.choose(flags: OpenBLASCoreType.cpuFlags())
    if let chosen {
      #expect(info["openblas_coretype_env"] as? String == chosen)
      #expect((info["openblas_core"] as? String)?.lowercased() == chosen.lowercased())
    }
    #expect(info["openblas_core"] as? String != "Prescott" || chosen == nil)
  }

  /// A binary whose kernels were compiled for AVX2 or AVX-512 refuses, in one line, a CPU
  /// without them (here a cpuinfo file of an SSE2-only CPU) instead of dying on an illegal
  /// instruction mid-step; a baseline build runs anywhere.
  @Test func refusesACPUItWasNotBuiltFor() throws {
    let info = try IGPTBinary.json(try IGPTBinary.run(["info", "--json"]).stdout)
    let target = try #require(info["kernel_cpu"] as? String)
    let fake = NSTemporaryDirectory() + "igpt-test-cpuinfo-\(getpid())"
    try "processor\t: 0\nflags\t\t: fpu sse sse2 lm\n".write(toFile: fake, atomically: true, encoding: .utf8)
    let r = try IGPTBinary.run(["info", "--json"], environment: ["IGPT_CPUINFO": fake])
    if target == "skylake-avx512" || target == "haswell" {
      #expect(r.status == 1)
      #expect(r.stderr.contains("built for \(target) CPUs") && r.stderr.contains("IGPT_TARGET_CPU=x86-64"), "\(r.stderr)")
      #expect(r.stderr.split(separator: "\n").count == 1)
    } else {
      #expect(r.status == 0, "\(r.stderr)")
    }
  }

  /// `info` prints the numerics fingerprint: the same twice, another with another thread count,
  /// at a run config's widths when given one, and the bench JSON carries it.
  @Test func infoAndBenchCarryTheNumericsFingerprint() throws {
    func numerics(_ args: [String]) throws -> [String: Any] {
      let r = try IGPTBinary.run(args)
      #expect(r.status == 0, "\(r.stderr)")
      return try #require(try IGPTBinary.json(r.stdout)["numerics"] as? [String: Any], "\(r.stdout)")
    }
    let a = try numerics(["info", "--json", "--threads", "2"])
    let probe = try #require(a["probe"] as? String)
    #expect(probe.count == 16 && a["threads"] as? Int == 2 && a["openblasCore"] as? String != nil && a["kernelCPU"] as? String != nil)
    #expect(try numerics(["info", "--json", "--threads", "2"])["probe"] as? String == probe)
    #expect(try numerics(["info", "--json", "--threads", "1"])["probe"] as? String != probe)
    let dir = Fixtures.directory("info-config")
    try "model: {layers: 2, embd: 32, heads: 2, seq: 16, vocab: 4}\ndata: {store: /nowhere}\ntrain: {threads: 1}\n"
      .write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
    let c = try numerics(["info", "--json", "--config", dir + "/c.yaml"])
    #expect((c["shape"] as? [String: Any])?["embd"] as? Int == 32 && c["threads"] as? Int == 1)
    let bench = try numerics(["bench", "--layers", "1", "--embd", "32", "--heads", "2", "--seq", "16", "--batch", "2", "--vocab", "4",
                              "--threads", "1", "--steps", "2"])
    #expect((bench["shape"] as? [String: Any])?["embd"] as? Int == 32 && bench["threads"] as? Int == 1)
    let missing = try IGPTBinary.run(["info", "--config", dir + "/none.yaml"])
    #expect(missing.status != 0 && missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
  }

  /// A core type the user sets is respected (and proves the variable reaches OpenBLAS).
  @Test func respectsTheUsersCoreType() throws {
    let r = try IGPTBinary.run(["info", "--json"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
    let info = try IGPTBinary.json(r.stdout)
    #expect(info["openblas_core"] as? String == "Haswell")
    #expect(info["openblas_coretype_env"] as? String == "Haswell")
  }

  @Test func benchPrintsOneJSONLineWithEveryField() throws {
    let r = try IGPTBinary.run([
      "bench", "--layers", "2", "--embd", "32", "--heads", "4", "--seq", "16", "--batch", "2",
      "--vocab", "8", "--steps", "2", "--threads", "2",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n")
    #expect(lines.count == 1)
    let j = try IGPTBinary.json(r.stdout)
    for key in ["tokens_per_s", "median_step_ms", "gflops", "sgemm_gflops", "mfu", "openblas_core",
                "threads", "peak_rss_mb"] {
      #expect(j[key] != nil, "missing \(key)")
    }
    #expect((j["tokens_per_s"] as? Double ?? 0) > 0)
    #expect((j["threads"] as? Int) == 2)
    #expect(abs((j["loss"] as? Double ?? 0) - log(8.0)) < 0.1)
  }

  /// Every thread count splits the kernels differently; all must train the same model (up to
  /// float summation order), and each must repeat itself exactly.
  @Test func threadCountsAgree() throws {
    func loss(_ threads: Int) throws -> Double {
      let r = try IGPTBinary.run([
        "bench", "--layers", "2", "--embd", "64", "--heads", "4", "--seq", "40", "--batch", "3",
        "--vocab", "16", "--steps", "3", "--threads", "\(threads)",
      ])
      return try IGPTBinary.json(r.stdout)["loss"] as? Double ?? .nan
    }
    let one = try loss(1), two = try loss(2), three = try loss(3)
    #expect(abs(one - two) < 1e-4 && abs(three - two) < 1e-4)
    #expect(try loss(3) == three)
  }

  @Test(arguments: [
    (["--embd", "100", "--heads", "8"], "divisible"),
    (["--layers", "0"], "layers"),
    (["--seq", "300", "--positions", "196"], "longer than"),
    (["--vocab", "1"], "vocab"),
  ])
  func badConfigsGiveOneErrorLine(args: [String], word: String) throws {
    let r = try IGPTBinary.run(["bench", "--steps", "1"] + args)
    #expect(r.status != 0)
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(r.stderr)")
    #expect(r.stderr.contains(word))
    #expect(r.stdout.isEmpty)
  }
}
