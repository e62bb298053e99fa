import Foundation

/// Chooses OpenBLAS's kernel family from the CPU's features, and makes sure the process runs on it.
///
/// Debian's OpenBLAS 0.3.21 misdetects recent CPUs and falls back to SSE3 "Prescott" kernels,
/// 5-8x slower. It reads OPENBLAS_CORETYPE once, when the library loads, so the variable has to
/// be in the environment before the process starts: `ensureCoreType` re-executes the binary with
/// it set when the user has not set it.
public enum OpenBLASCoreType {
  /// The environment variable OpenBLAS reads at load time.
  public static let variable = "OPENBLAS_CORETYPE"

  /// The best OpenBLAS core type for a CPU with these /proc/cpuinfo flags, or nil to let
  /// OpenBLAS decide (CPUs without AVX2, where its generic choice is already right).
  public static func choose(flags: Set<String>) -> String? {
    if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
      return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
    }
    if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
    return nil
  }

  /// This machine's CPU flags from /proc/cpuinfo (empty if unreadable); `IGPT_CPUINFO` names
  /// another file to read (tests: a host that cannot run a core type).
  public static func cpuFlags() -> Set<String> {
    let source = ProcessInfo.processInfo.environment["IGPT_CPUINFO"] ?? "/proc/cpuinfo"
    guard let text = try? String(contentsOfFile: source, encoding: .utf8) else { return [] }
    for line in text.split(separator: "\n") where line.hasPrefix("flags") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
    return []
  }

  /// The /proc/cpuinfo flags each OpenBLAS core type igpt may pin needs (its kernels' instructions).
  public static let requiredFlags: [String: [String]] = [
    "Prescott": ["pni"],
    "Nehalem": ["ssse3", "sse4_1", "sse4_2"],
    "Sandybridge": ["avx"],
    "Haswell": ["avx2", "fma"],
    "Zen": ["avx2", "fma"],
    "SkylakeX": ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"],
    "Cooperlake": ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512_bf16"],
  ]

  /// Whether a CPU with these flags can run OpenBLAS's `core` kernels (unknown names: no).
  public static func canRun(_ core: String, flags: Set<String>) -> Bool {
    guard let need = requiredFlags[core] else { return false }
    return flags.isSuperset(of: need)
  }

  /// The core types this CPU can run, sorted by name.
  public static func runnable(flags: Set<String>) -> [String] {
    requiredFlags.keys.filter { canRun($0, flags: flags) }.sorted()
  }

  /// Set in the environment of a process re-executed by `pin`, naming the core it was pinned
  /// to: if OpenBLAS still loads other kernels, the pin failed and must not be tried again.
  public static let pinnedVariable = "IGPT_PINNED_CORETYPE"

  /// Re-executes this binary with OPENBLAS_CORETYPE = `core` (and `environment` added), keeping
  /// its arguments; never returns on success. Throws when this process already is such a
  /// re-execution and OpenBLAS still did not load `core` (it refused it on this CPU), or when
  /// exec fails.
  public static func pin(to core: String, environment: [String: String] = [:]) throws -> Never {
    if ProcessInfo.processInfo.environment[pinnedVariable] == core {
      throw PinError("OpenBLAS runs \(BLAS.coreName) kernels although \(variable)=\(core) was set: this host cannot run \(core)")
    }
    setenv(variable, core, 1)
    setenv(pinnedVariable, core, 1)
    for (k, v) in environment { setenv(k, v, 1) }
    let args = CommandLine.arguments
    var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
    argv.append(nil)
    execv("/proc/self/exe", &argv)
    throw PinError("could not re-execute with \(variable)=\(core): \(String(cString: strerror(errno)))")
  }

  /// A pin that cannot be made.
  public struct PinError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
  }

  /// If OPENBLAS_CORETYPE is unset and this CPU has a better choice, re-executes the current
  /// binary with it set (never returns then). Otherwise returns and the process goes on.
  public static func ensureCoreType() {
    if ProcessInfo.processInfo.environment[variable] != nil { return }
    guard let core = choose(flags: cpuFlags()) else { return }
    setenv(variable, core, 1)
    let args = CommandLine.arguments
    var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
    argv.append(nil)
    execv("/proc/self/exe", &argv)
    // exec failed: go on with the kernels OpenBLAS picked, and say so.
    let reason = String(cString: strerror(errno))
    FileHandle.standardError.write(
      Data("igpt: warning: could not re-execute with \(variable)=\(core) (\(reason)); BLAS may be slow\n".utf8))
  }
}
