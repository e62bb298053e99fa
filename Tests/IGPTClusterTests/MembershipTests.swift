import Foundation
import Testing
@testable import IGPTCluster
@testable import IGPTModel
@testable import IGPTTraining

/// Who may join a run and when they may work, decided without sockets.
@Suite struct MembershipTests {
  static let fingerprint = NumericsFingerprint(
    openblas: "OpenBLAS 0.3.21 DYNAMIC_ARCH", openblasCore: "Haswell", kernelCPU: "haswell", threads: 2,
    shape: .init(ModelConfig(layers: 1, embd: 32, heads: 2, seq: 16, vocab: 4)), probe: "00000000000000aa")

  static func hello(core: String = "Haswell", runnable: [String] = ["Haswell", "Sandybridge"], config: RunConfig? = nil) -> Wire.Hello {
    Wire.Hello(name: "w", host: "h", pid: 7, config: config,
               numerics: .init(openblas: "OpenBLAS 0.3.21 DYNAMIC_ARCH", openblasCore: core, kernelCPU: "haswell", runnable: runnable))
  }

  @Test func helloAdmissionByConfigAndNumerics() throws {
    let config = try RunConfig.parse("train: {lr: 0.01}")
    let m = Membership(config: config)
    let strict = RunNumerics(fingerprint: Self.fingerprint, policy: .strict)
    #expect(m.admit(Self.hello(), address: "a", numerics: strict) == .welcome(otherNumerics: nil))
    guard case .refuse(let reason, true, nil, let line) = m.admit(Self.hello(config: try RunConfig.parse("train: {lr: 0.02}")), address: "a",
                                                                  numerics: strict) else {
      Issue.record("another config admitted")
      return
    }
    #expect(reason.contains("train.lr") && line.contains("refused worker w (a)"))
    guard case .refuse(_, false, "Haswell", _) = m.admit(Self.hello(core: "Sandybridge"), address: "a", numerics: strict) else {
      Issue.record("a worker on other kernels it can leave is not pinned")
      return
    }
    guard case .refuse(_, true, nil, _) = m.admit(Self.hello(core: "Sandybridge", runnable: ["Sandybridge"]), address: "a", numerics: strict) else {
      Issue.record("a worker that cannot run the run's kernels is admitted")
      return
    }
    let any = RunNumerics(fingerprint: Self.fingerprint, policy: .any)
    guard case .welcome(let why?) = m.admit(Self.hello(core: "Sandybridge", runnable: []), address: "a", numerics: any) else {
      Issue.record("policy any refuses, or does not say what differs")
      return
    }
    #expect(why.contains("Sandybridge"))
  }

  @Test func theFirstReadysFingerprintDecidesOnceAndSilenceIsSeen() throws {
    var m = Membership(config: try RunConfig.parse("train: {lr: 0.01}"))
    let strict = RunNumerics(fingerprint: Self.fingerprint, policy: .strict)
    let id = Data("x".utf8), t0 = Date(timeIntervalSince1970: 0)
    m.join(id, Self.hello(), address: "a", otherNumerics: nil, now: t0)
    var other = Self.fingerprint
    other.probe = "00000000000000bb"
    #expect(m.checkNumerics(id, other, numerics: strict) != nil)  // refused: other bytes
    #expect(m[id]?.numericsChecked == false)
    #expect(m.checkNumerics(id, Self.fingerprint, numerics: strict) == nil)
    #expect(m[id]?.numericsChecked == true)
    #expect(m.checkNumerics(id, other, numerics: strict) == nil)  // checked once, at its first ready
    #expect(m.silent(now: t0.addingTimeInterval(4), deadAfter: 5).isEmpty)
    m.heard(id, bytes: 10, now: t0.addingTimeInterval(4))
    #expect(m.silent(now: t0.addingTimeInterval(8), deadAfter: 5).isEmpty)
    #expect(m.silent(now: t0.addingTimeInterval(10), deadAfter: 5).map(\.id) == [id])
    #expect(m[id]?.bytesSent == 10)
    m.remove(id)
    #expect(m.count == 0)
  }
}
