/// The CPU these numeric kernels were compiled for (Package.swift's kernelTargetCPU), and the
/// arithmetic that decides: part of the numerics fingerprint.
///
/// The target changes the bytes in one place only: attention's tile products fuse each
/// multiply-add on every target with FMA (haswell, skylake-avx512, znver..., and any other named
/// CPU, where a fused multiply-add without the instruction is libm's `fmaf`: the same result),
/// and multiply then add on the x86-64 baseline. Every other kernel rounds each operation on its
/// own, lane by lane, in a fixed order, so targets with the same arithmetic compute the same bytes
/// (the AVX2 and AVX-512 builds agree; measured with `make check-targets`).
public enum KernelCPU {
  #if IGPT_KERNEL_CPU_skylake_avx512
    public static let name = "skylake-avx512"
  #elseif IGPT_KERNEL_CPU_haswell
    public static let name = "haswell"
  #elseif IGPT_KERNEL_CPU_baseline
    public static let name = "baseline"
  #elseif DEBUG
    public static let name = "debug"
  #else
    public static let name = "custom"  // IGPT_TARGET_CPU named a CPU without its own name here
  #endif

  /// This build's arithmetic (`arithmetic(of: name)`).
  public static var arithmetic: String { arithmetic(of: name) }

  /// The arithmetic kernels compiled for `target` (a `name`) compute with: targets that agree on
  /// it compute the same bytes.
  public static func arithmetic(of target: String) -> String {
    target == "baseline" ? "separate multiply and add" : "fused multiply-add"
  }
}
