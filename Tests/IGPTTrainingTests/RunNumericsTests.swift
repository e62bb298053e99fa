import Foundation
import Testing

@testable import IGPTKernels
@testable import IGPTModel
@testable import IGPTTraining

/// The rules that keep a run on one numerics, on their own (the end-to-end tests run them
/// through real coordinators and workers).
@Suite struct RunNumericsTests {
  static let run = NumericsFingerprint(
    openblas: "OpenBLAS 0.3.21 DYNAMIC_ARCH", openblasCore: "Haswell", kernelCPU: "haswell", threads: 2,
    shape: .init(ModelConfig(layers: 1, embd: 32, heads: 2, seq: 16, vocab: 4)), probe: "00000000000000aa")

  static func host(core: String = "Haswell", kernel: String = "haswell", openblas: String = "OpenBLAS 0.3.21 DYNAMIC_ARCH",
                   runnable: [String] = ["Haswell", "Sandybridge"]) -> NumericsFingerprint.Host {
    .init(openblas: openblas, openblasCore: core, kernelCPU: kernel, runnable: runnable)
  }

  @Test func strictPinsWhatItCanAndRefusesTheRest() {
    let strict = RunNumerics(fingerprint: Self.run, policy: .strict)
    #expect(strict.admit(Self.host()) == .accept)
    #expect(strict.admit(Self.host(core: "Sandybridge")) == .pin(core: "Haswell"))
    guard case .refuse(let why) = strict.admit(Self.host(core: "Sandybridge", runnable: ["Sandybridge"])) else {
      Issue.record("a worker that cannot run Haswell is refused")
      return
    }
    #expect(why.contains("cannot run the run's Haswell") && why.contains("worker: OpenBLAS Sandybridge") && why.contains("run: OpenBLAS Haswell"))
    // no pin changes the kernels' arithmetic or the OpenBLAS build; targets that share the
    // arithmetic (AVX2 and AVX-512 builds both fuse) compute the same bytes and are accepted
    #expect(strict.admit(Self.host(kernel: "skylake-avx512")) == .accept)
    if case .refuse(let why) = strict.admit(Self.host(kernel: "baseline")) {
      #expect(why.contains("igpt kernels for baseline (separate multiply and add), the run's for haswell (fused multiply-add)"))
    } else {
      Issue.record("a baseline (no FMA) build accepted into a haswell run")
    }
    if case .refuse = strict.admit(Self.host(core: "Sandybridge", openblas: "OpenBLAS 0.3.26")) {} else { Issue.record("other build accepted") }
    if case .refuse = strict.admit(nil) {} else { Issue.record("a worker without numerics accepted") }
  }

  @Test func anyAcceptsEveryWorkerAsItIs() {
    let any = RunNumerics(fingerprint: Self.run, policy: .any)
    #expect(any.admit(Self.host()) == .accept)
    for host in [Self.host(core: "Sandybridge"), Self.host(kernel: "baseline"), Self.host(core: "Prescott", runnable: [])] {
      if case .acceptMixed = any.admit(host) {} else { Issue.record("\(host) not accepted as mixed") }
    }
  }

  @Test func theFingerprintAtTheRunsWidthsDecides() {
    let strict = RunNumerics(fingerprint: Self.run, policy: .strict)
    #expect(strict.check(Self.run) == .accept)
    var threads = Self.run
    threads.threads = 1
    if case .refuse(let why) = strict.check(threads) { #expect(why.contains("1 threads vs 2")) } else { Issue.record("other threads accepted") }
    var probe = Self.run
    probe.probe = "00000000000000bb"
    if case .refuse(let why) = strict.check(probe) { #expect(why.contains("probe computation")) } else { Issue.record("other bytes accepted") }
    if case .acceptMixed = RunNumerics(fingerprint: Self.run, policy: .any).check(probe) {} else { Issue.record("any refused") }
    // another target with the same arithmetic: the probe decides
    var avx512 = Self.run
    avx512.kernelCPU = "skylake-avx512"
    #expect(strict.check(avx512) == .accept)
    avx512.probe = "00000000000000bb"
    if case .refuse = strict.check(avx512) {} else { Issue.record("other bytes from another target accepted") }
    var baseline = Self.run
    baseline.kernelCPU = "baseline"
    if case .refuse(let why) = strict.check(baseline) { #expect(why.contains("separate multiply and add")) } else { Issue.record("baseline accepted") }
  }

  /// The fingerprint is a function of the kernels, the widths and the threads: the same on a
  /// second measurement, different at other widths or another thread count.
  @Test func fingerprintsRepeatAndSeeWidthsAndThreads() throws {
    let m = ModelConfig(layers: 3, embd: 32, heads: 2, seq: 40, vocab: 8)
    let a = try NumericsFingerprint.measure(m, threads: 2)
    #expect(try NumericsFingerprint.measure(m, threads: 2) == a)
    #expect(a.openblasCore == BLAS.coreName && a.kernelCPU == KernelCPU.name && a.threads == 2)
    var deeper = m
    deeper.layers = 9
    #expect(try NumericsFingerprint.measure(deeper, threads: 2).probe == a.probe, "depth does not change the kernels' shapes")
    var wider = m
    wider.embd = 48
    #expect(try NumericsFingerprint.measure(wider, threads: 2).probe != a.probe)
    var bert = m
    bert.objective = .bert
    #expect(try NumericsFingerprint.measure(bert, threads: 2).probe != a.probe)
  }

  @Test func configKeysParseAndBadOnesAreNamed() throws {
    let c = try RunConfig.parse("cluster: {numerics: any, openblas_core: Haswell}\nprobes: {seed: 4}")
    #expect(c.cluster.numerics == .any && c.cluster.openblasCore == "Haswell" && c.probes.seed == 4)
    #expect(RunConfig().cluster.numerics == .strict && RunConfig().cluster.openblasCore == nil)
    #expect(throws: ConfigError.self) { try RunConfig.parse("cluster: {numerics: loose}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("cluster: {openblas_core: haswell}") }
  }
}
