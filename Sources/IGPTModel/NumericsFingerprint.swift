import Foundation
import IGPTKernels

/// Everything that decides the bytes a process computes for a model shape, and a hash of a
/// cheap canonical computation that runs the same kernels at the same widths.
///
/// An sgemm row's bytes depend on OpenBLAS's kernel family (its core type), its build, and the
/// call's shape; igpt's own kernels on the CPU they were compiled for; and how work is split
/// over threads. Two processes whose fingerprints are equal compute the same bytes for that
/// model; a cluster run admits only workers whose fingerprint is the run's (cluster.numerics).
public struct NumericsFingerprint: Codable, Equatable, Sendable {
  /// OpenBLAS's version and build options (`openblas_get_config` without the core name).
  public var openblas: String
  /// The kernel family OpenBLAS loaded ("Haswell", "SkylakeX", ...).
  public var openblasCore: String
  /// The CPU igpt's kernels were compiled for (targets of the same `KernelCPU.arithmetic`
  /// compute the same bytes).
  public var kernelCPU: String
  /// Threads the kernels split their work over.
  public var threads: Int
  /// The widths the probe computation ran at.
  public var shape: Shape
  /// 16 hex digits: hash of the probe computation's loss, gradients and updated parameters.
  public var probe: String

  /// The widths of a model that decide its kernels' shapes (its depth does not).
  public struct Shape: Codable, Equatable, Sendable {
    public var embd: Int
    public var heads: Int
    public var vocab: Int
    public var seq: Int
    public var objective: ModelConfig.Objective
    public init(_ m: ModelConfig) {
      embd = m.embd
      heads = m.heads
      vocab = m.vocab
      seq = m.seq
      objective = m.objective
    }
  }

  /// The parts that are fixed for a process (a worker says them in its hello, before it knows
  /// the run's shapes).
  public struct Host: Codable, Equatable, Sendable {
    public var openblas: String
    public var openblasCore: String
    public var kernelCPU: String
    /// OpenBLAS core types this CPU can run (it can be pinned to any of them).
    public var runnable: [String]

    /// This process's.
    public static func current() -> Host {
      Host(openblas: NumericsFingerprint.openblasBuild, openblasCore: BLAS.coreName, kernelCPU: KernelCPU.name,
           runnable: OpenBLASCoreType.runnable(flags: OpenBLASCoreType.cpuFlags()))
    }
  }

  /// The shapes `igpt info` fingerprints when there is no run: the bench shape.
  public static let defaultShape = ModelConfig(layers: 1, embd: 256, heads: 8, seq: 196, vocab: 16)

  /// OpenBLAS's build string without the core type it loaded (which `openblasCore` holds).
  public static var openblasBuild: String {
    let core = BLAS.coreName
    return BLAS.config.split(separator: " ").filter { $0 != core }.joined(separator: " ")
  }

  /// This process's fingerprint for models of `model`'s widths, with the kernels split over
  /// `threads` (for this thread's kernels only: `Parallel.withThreads`). Runs one training step
  /// (forward, backward, AdamW) of a one-block model of those
  /// widths on at most 64 positions with parameters from a fixed hash: tens of milliseconds at
  /// igpt-l's widths, a few at the bench shape.
  public static func measure(_ model: ModelConfig, threads: Int) throws -> NumericsFingerprint {
    let T = min(model.seq, 64)
    let probe = try IGPT(config: ModelConfig(layers: 1, embd: model.embd, heads: model.heads, seq: T, vocab: model.vocab,
                                             objective: model.objective))
    let n = probe.parameterCount
    fill(probe.params, count: n, seed: 1, scale: 0.1)
    let B = 2
    var tokens = [Int32](repeating: 0, count: B * T)
    var mask = [UInt8](repeating: 0, count: B * T)
    for i in tokens.indices {
      tokens[i] = Int32((i &* 7 &+ i / 3) % model.vocab)
      mask[i] = i % 7 == 2 || i % 11 == 5 ? 1 : 0
    }
    // the count applies to this thread's kernels only (others may be running theirs)
    let hash = Parallel.withThreads(threads) { probeHash(probe, n: n, tokens: tokens, mask: mask, bert: model.objective == .bert) }
    let host = Host.current()
    return NumericsFingerprint(openblas: host.openblas, openblasCore: host.openblasCore, kernelCPU: host.kernelCPU,
                               threads: threads, shape: Shape(model), probe: String(format: "%016llx", hash))
  }

  /// The hash of one training step's loss, gradient and AdamW update of the probe model.
  static func probeHash(_ probe: IGPT, n: Int, tokens: [Int32], mask: [UInt8], bert: Bool) -> UInt64 {
    let B = 2
    let m = UnsafeMutablePointer<Float>.allocate(capacity: n)
    let v = UnsafeMutablePointer<Float>.allocate(capacity: n)
    m.initialize(repeating: 0, count: n)
    v.initialize(repeating: 0, count: n)
    defer {
      m.deallocate()
      v.deallocate()
    }
    let loss = tokens.withUnsafeBufferPointer { t in
      mask.withUnsafeBufferPointer { k in
        probe.forwardBackward(tokens: t.baseAddress!, mask: bert ? k.baseAddress! : nil, batch: B)
      }
    }
    var h = Hash()
    h.add(loss.bitPattern)
    h.add(probe.grads, count: n)
    AdamW.update(params: probe.params, grads: probe.grads, m: m, v: v, count: n,
                 step: .init(learningRate: 1e-3, t: 1, weightDecay: 0.01))
    h.add(probe.params, count: n)
    return h.value
  }

  /// One line for logs and refusals.
  public var summary: String {
    "OpenBLAS \(openblasCore) kernels (\(openblas)), igpt kernels for \(kernelCPU), threads \(threads), probe \(probe)"
  }

  /// The first part that differs from `other`, said as "theirs vs ours", or nil when equal.
  public func difference(from other: NumericsFingerprint) -> String? {
    if openblasCore != other.openblasCore { return "OpenBLAS core \(openblasCore) vs \(other.openblasCore)" }
    if openblas != other.openblas { return "OpenBLAS build '\(openblas)' vs '\(other.openblas)'" }
    // targets with the same arithmetic compute the same bytes (KernelCPU): the probe decides
    if KernelCPU.arithmetic(of: kernelCPU) != KernelCPU.arithmetic(of: other.kernelCPU) {
      return "igpt kernels for \(kernelCPU) vs \(other.kernelCPU) (\(KernelCPU.arithmetic(of: kernelCPU)) vs \(KernelCPU.arithmetic(of: other.kernelCPU)))"
    }
    if threads != other.threads { return "\(threads) threads vs \(other.threads)" }
    if shape != other.shape { return "fingerprinted at other widths" }
    if probe != other.probe { return "probe computation \(probe) vs \(other.probe)" }
    return nil
  }

  /// Deterministic values in [-scale, scale) from a counter hash: fast at any size.
  static func fill(_ p: UnsafeMutablePointer<Float>, count: Int, seed: UInt64, scale: Float) {
    for i in 0..<count {
      var z = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ seed
      z = (z ^ (z >> 31)) &* 0xBF58_476D_1CE4_E5B9
      z ^= z >> 29
      p[i] = (Float(z >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
  }

  /// A 64-bit hash of float bits, word by word (a multiply-xor mix: fast on millions of values).
  struct Hash {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ word: UInt64) {
      value = (value ^ word) &* 0x100_0000_01B3
      value ^= value >> 29
    }
    mutating func add(_ p: UnsafePointer<Float>, count: Int) {
      for i in 0..<count { add(UInt64(p[i].bitPattern)) }
    }
  }
}
