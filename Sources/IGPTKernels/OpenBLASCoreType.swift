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

  /// This machine's CPU flags from /proc/cpuinfo (empty if unreadable).
  public static func cpuFlags() -> Set<String> {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
    for line in text.split(separator: "\n") where line.hasPrefix("flags") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
    return []
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
