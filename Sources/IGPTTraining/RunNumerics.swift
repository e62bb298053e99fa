import Foundation
import IGPTKernels
import IGPTModel

/// The numerics a run computes with, and the rules that keep every process of it on them.
///
/// A run has one numerics: the fingerprint (`NumericsFingerprint`) of the process that started
/// it, or of the OpenBLAS core type `cluster.openblas_core` names, recorded in every
/// checkpoint's state.json. `igpt train --resume` and the coordinator pin themselves to it;
/// workers are pinned to it or refused (`admit`, `check`). With `cluster.numerics: any` every
/// process is accepted, and a run that really mixed numerics is marked not reproducible.
public struct RunNumerics: Sendable {
  public var fingerprint: NumericsFingerprint
  public var policy: RunConfig.NumericsPolicy
  /// False once a process with other numerics contributed (policy `any` only); kept across resumes.
  public var reproducible: Bool

  public init(fingerprint: NumericsFingerprint, policy: RunConfig.NumericsPolicy, reproducible: Bool = true) {
    self.fingerprint = fingerprint
    self.policy = policy
    self.reproducible = reproducible
  }

  /// What to do with a worker, from its hello or its first ready.
  public enum Admission: Equatable, Sendable {
    case accept
    /// Accepted although its numerics differ (policy any): the run is no longer reproducible.
    case acceptMixed(String)
    /// It can run the run's OpenBLAS core: it re-executes itself with it and says hello again.
    case pin(core: String)
    case refuse(String)
  }

  /// A worker's hello: its fixed numerics (before it knows the run's widths).
  public func admit(_ host: NumericsFingerprint.Host?) -> Admission {
    let run = fingerprint
    guard let host else {
      return policy == .any ? .acceptMixed("the worker did not say its numerics (an older igpt)")
        : .refuse("the worker did not say its numerics (an older igpt?); the run's: \(run.summary)")
    }
    var differences: [String] = []
    if host.openblas != run.openblas { differences.append("OpenBLAS build '\(host.openblas)', the run's '\(run.openblas)'") }
    if KernelCPU.arithmetic(of: host.kernelCPU) != KernelCPU.arithmetic(of: run.kernelCPU) {
      differences.append("igpt kernels for \(host.kernelCPU) (\(KernelCPU.arithmetic(of: host.kernelCPU))), the run's for \(run.kernelCPU) (\(KernelCPU.arithmetic(of: run.kernelCPU)))")
    }
    if differences.isEmpty && host.openblasCore != run.openblasCore {
      // strict pins what it can; any takes every worker as it comes
      if policy == .strict && host.runnable.contains(run.openblasCore) { return .pin(core: run.openblasCore) }
      differences.append(host.runnable.contains(run.openblasCore) ? "OpenBLAS \(host.openblasCore) kernels, the run's \(run.openblasCore)"
        : "OpenBLAS \(host.openblasCore) kernels and cannot run the run's \(run.openblasCore) (it runs \(host.runnable.joined(separator: ", ")))")
    } else if host.openblasCore != run.openblasCore {
      differences.append("OpenBLAS \(host.openblasCore) kernels, the run's \(run.openblasCore)")
    }
    if differences.isEmpty { return .accept }
    let why = "the worker has " + differences.joined(separator: "; ")
      + "; worker: OpenBLAS \(host.openblasCore) kernels (\(host.openblas)), igpt kernels for \(host.kernelCPU); run: \(run.summary)"
    return policy == .any ? .acceptMixed(why) : .refuse(why + " (cluster.numerics: strict)")
  }

  /// A worker's fingerprint at the run's widths and threads, measured after its welcome.
  public func check(_ theirs: NumericsFingerprint?) -> Admission {
    guard let theirs else { return policy == .any ? .acceptMixed("no fingerprint") : .refuse("the worker sent no numerics fingerprint") }
    guard let diff = theirs.difference(from: fingerprint) else { return .accept }
    let why = "numerics differ (\(diff)): worker \(theirs.summary); run \(fingerprint.summary)"
    return policy == .any ? .acceptMixed(why) : .refuse(why)
  }

  /// The threads a run computes with: the recorded ones when resuming, else train.threads
  /// (0 = this host's cores).
  public static func threads(config: RunConfig, recorded: NumericsFingerprint?) -> Int {
    recorded?.threads ?? (config.train.threads > 0 ? config.train.threads : ProcessInfo.processInfo.activeProcessorCount)
  }

  /// This process's numerics for a run of `model` (resumed from `recorded`, if any), pinning it
  /// first when the run computes with another OpenBLAS core: that re-executes the binary with
  /// OPENBLAS_CORETYPE set (and never returns). Throws a one-line reason when the run's
  /// numerics cannot be had here and the policy is strict; with `any` it logs why and goes on,
  /// the run marked not reproducible.
  public static func establish(config: RunConfig, model: ModelConfig, recorded state: Checkpoint.State?,
                               log: (String) -> Void) throws -> RunNumerics {
    let policy = config.cluster.numerics
    let recorded = state?.numerics
    func problem(_ why: String) throws {
      if policy == .strict { throw NumericsError(why + " (cluster.numerics: any accepts it, marking the run not reproducible)") }
      log("warning: \(why) (cluster.numerics: any)")
    }
    if let wanted = config.cluster.openblasCore, let was = recorded?.openblasCore, wanted != was {
      try problem("cluster.openblas_core is \(wanted) but the run so far computed with OpenBLAS \(was) kernels; keeping \(was)")
    }
    if let core = recorded?.openblasCore ?? config.cluster.openblasCore, core != BLAS.coreName {
      if OpenBLASCoreType.canRun(core, flags: OpenBLASCoreType.cpuFlags()) {
        log("pinning to OpenBLAS \(core) kernels (the run's numerics; this process loaded \(BLAS.coreName)): re-executing")
        do { try OpenBLASCoreType.pin(to: core) } catch { try problem("\(error)") }
      } else {
        try problem("the run computes with OpenBLAS \(core) kernels, which this CPU cannot run (it runs \(OpenBLASCoreType.runnable(flags: OpenBLASCoreType.cpuFlags()).joined(separator: ", ")))")
      }
    }
    if let r = recorded, config.train.threads > 0, config.train.threads != r.threads {
      try problem("train.threads is \(config.train.threads) but the run so far computed with \(r.threads) threads; keeping \(r.threads)")
    }
    // what marks the run is a real difference in what this process computes
    var mixed = false
    let fingerprint = try NumericsFingerprint.measure(model, threads: threads(config: config, recorded: recorded))
    if let r = recorded, let diff = fingerprint.difference(from: r) {
      try problem("this host's numerics differ from the run's (\(diff)): here \(fingerprint.summary); the run's \(r.summary); the run is marked not reproducible")
      mixed = true
    }
    return RunNumerics(fingerprint: recorded ?? fingerprint, policy: policy, reproducible: (state?.reproducible ?? true) && !mixed)
  }
}

/// The run's numerics cannot be had here.
public struct NumericsError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
