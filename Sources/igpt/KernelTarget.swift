import Foundation

/// The CPU igpt's numeric kernels were compiled for, and the check that this host has it.
///
/// Package.swift compiles the kernel modules for the build host's vector unit (AVX-512 or AVX2;
/// `IGPT_TARGET_CPU` overrides). A binary copied to an older CPU would die on an illegal
/// instruction somewhere deep in a step; this check runs first, in code compiled for baseline
/// x86-64 (this executable target), and says what to do instead.
enum KernelTarget {
  #if IGPT_KERNEL_CPU_skylake_avx512
    static let name = "skylake-avx512"
    static let requiredFlags = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"]
  #elseif IGPT_KERNEL_CPU_haswell
    static let name = "haswell"
    static let requiredFlags = ["avx2", "fma", "f16c"]
  #elseif IGPT_KERNEL_CPU_baseline
    static let name = "baseline"
    static let requiredFlags: [String] = []
  #else
    static let name = "custom"  // IGPT_TARGET_CPU named a CPU this check does not know
    static let requiredFlags: [String] = []
  #endif

  /// Exits with a one-line explanation if this CPU lacks an instruction set the kernels use.
  /// `IGPT_CPUINFO` names another file to read instead of /proc/cpuinfo (to test the refusal).
  static func ensureSupported() {
    let source = ProcessInfo.processInfo.environment["IGPT_CPUINFO"] ?? "/proc/cpuinfo"
    guard !requiredFlags.isEmpty,
      let info = try? String(contentsOfFile: source, encoding: .utf8),
      let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return }
    let flags = Set(line.split(separator: " ").map(String.init))
    let missing = requiredFlags.filter { !flags.contains($0) }
    if missing.isEmpty { return }
    FileHandle.standardError.write(
      Data(
        ("Error: this igpt was built for \(name) CPUs, and this one lacks \(missing.joined(separator: ", ")). "
          + "Rebuild it on this host (make build), or build once with IGPT_TARGET_CPU=x86-64 "
          + "for a binary that runs anywhere (slower).\n").utf8))
    exit(1)
  }
}
