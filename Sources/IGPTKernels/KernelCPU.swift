/// The CPU these numeric kernels were compiled for (Package.swift's kernelTargetCPU): part of
/// what decides the bytes they compute, so it is part of the numerics fingerprint.
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
}
