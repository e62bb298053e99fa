// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The CPU the numeric kernels are compiled for: the build host's vector extensions, read from
/// /proc/cpuinfo (baseline x86-64 has only SSE2, and Swift's SIMD types run 2-4x slower there).
/// `IGPT_TARGET_CPU` overrides it, e.g. `IGPT_TARGET_CPU=x86-64` for a binary that runs on any
/// x86-64 host, or `haswell` to share one build between AVX2 and AVX-512 hosts. The `igpt`
/// executable itself stays baseline so it can refuse a CPU it was not built for with a message.
func kernelTargetCPU() -> String? {
  if let forced = ProcessInfo.processInfo.environment["IGPT_TARGET_CPU"], !forced.isEmpty {
    return forced == "x86-64" || forced == "generic" ? nil : forced
  }
  #if arch(x86_64)
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return nil }
    let flags = Set(flagsLine.split(separator: " ").map(String.init))
    if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"]) {
      return "skylake-avx512"
    }
    if flags.isSuperset(of: ["avx2", "fma", "f16c"]) { return "haswell" }
  #endif
  return nil
}

/// Release builds target the build host's vector unit. The target is part of a process's
/// numerics fingerprint (`igpt info`) through its arithmetic: attention's products fuse each
/// multiply-add on every target with FMA and multiply then add on the x86-64 baseline, so the
/// haswell and skylake-avx512 builds compute the same bytes and the baseline others (KernelCPU).
/// With the OpenBLAS core type and the thread count it decides the bytes a run computes, and
/// cluster runs pin or refuse workers on it.
let kernelCPU = kernelTargetCPU()
let kernelCPUDefine = "-DIGPT_KERNEL_CPU_" + (kernelCPU ?? "baseline").replacingOccurrences(of: "-", with: "_")
let targetCPU = kernelCPU.map { ["-target-cpu", $0] } ?? []
/// The numeric kernels (IGPTKernels: raw pointers, sizes checked by their callers) drop Swift's
/// runtime checks in their hot loops (platform-notes.md).
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", kernelCPUDefine] + targetCPU, .when(configuration: .release))]
/// Every target that parses bytes from outside (messages, IDX/CIFAR/image files, token stores,
/// safetensors, .npy, configs, state.json, the command line) keeps them: an overflow or a bad
/// index there traps instead of running on as undefined behaviour.
let checkedFlags: [SwiftSetting] = [.unsafeFlags([kernelCPUDefine] + targetCPU, .when(configuration: .release))]
/// The executable: runtime checks kept, baseline instructions (see kernelTargetCPU).
let executableFlags: [SwiftSetting] = [.unsafeFlags([kernelCPUDefine], .when(configuration: .release))]

let package = Package(
  name: "igpt",
  platforms: [.macOS(.v13)],
  products: [.executable(name: "igpt", targets: ["igpt"])],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    // TensorBoard event files: the runtime only (the generated code is committed, `make proto`)
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
  ],
  targets: [
    // Thin C shims over Debian's system libraries, found through pkg-config.
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
    .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .target(name: "CImage"),  // stb headers from libstb-dev; the implementation compiled here
    .target(name: "CChecksum"),  // CRC-32C with the SSE4.2 instruction, for message checksums

    .target(name: "IGPTKernels", dependencies: ["CBLAS"], swiftSettings: kernelFlags),
    .target(name: "IGPTModel", dependencies: ["IGPTKernels"], swiftSettings: checkedFlags),
    .target(
      name: "IGPTData", dependencies: ["IGPTKernels", "IGPTModel", "CImage", "CZlib"],
      swiftSettings: checkedFlags),
    .target(
      name: "IGPTTraining",
      dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "CChecksum", "Yams", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
      exclude: ["Proto/tensorboard_event.proto"],
      swiftSettings: checkedFlags),
    .target(name: "IGPTVQVAE", dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "IGPTTraining"], swiftSettings: checkedFlags),
    .target(name: "IGPTProbe", dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "CBLAS"], swiftSettings: checkedFlags),
    .target(
      name: "IGPTCluster", dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "IGPTTraining", "IGPTProbe", "IGPTVQVAE", "CZeroMQ", "CLZ4", "CChecksum"],
      swiftSettings: checkedFlags),
    .target(name: "IGPTReport"),
    .executableTarget(
      name: "igpt",
      dependencies: [
        "IGPTKernels", "IGPTModel", "IGPTData", "IGPTTraining", "IGPTCluster", "IGPTProbe", "IGPTVQVAE", "IGPTReport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: executableFlags),

    .testTarget(name: "IGPTKernelsTests", dependencies: ["IGPTKernels"]),
    .testTarget(name: "IGPTModelTests", dependencies: ["IGPTModel", "IGPTKernels"]),
    // Fixture writers (IDX, gzip, CIFAR, PNG) shared by the data and end-to-end tests.
    .target(name: "IGPTTestSupport", dependencies: ["CImage", "CZlib"], path: "Tests/IGPTTestSupport"),
    .testTarget(name: "IGPTDataTests", dependencies: ["IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport"]),
    .testTarget(
      name: "IGPTTrainingTests",
      dependencies: ["IGPTTraining", "IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport",
                     .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
    .testTarget(name: "IGPTReportTests", dependencies: ["IGPTReport"]),
    .testTarget(name: "IGPTVQVAETests", dependencies: ["IGPTVQVAE", "IGPTKernels", "IGPTTraining"]),
    .testTarget(name: "IGPTProbeTests", dependencies: ["IGPTProbe", "IGPTModel", "IGPTKernels"]),
    .testTarget(
      name: "IGPTClusterTests",
      dependencies: ["IGPTCluster", "CChecksum", "IGPTTraining", "IGPTProbe", "IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport", "IGPTFuzzHarness"]),
    // The parsers `make fuzz` feeds (Tests/Fuzz), also replayed on every kept crash input by the tests.
    .target(name: "IGPTFuzzHarness", dependencies: ["IGPTCluster", "IGPTData", "IGPTModel", "IGPTTraining", "IGPTVQVAE"], path: "Tests/FuzzHarness"),
    .testTarget(
      name: "IGPTEndToEndTests",
      dependencies: ["IGPTCluster", "IGPTTraining", "IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport"]),
  ],
  swiftLanguageModes: [.v5]
)

/// `make fuzz` only (IGPT_FUZZ=1): the libFuzzer harnesses of Tests/Fuzz, built with
/// -sanitize=fuzzer,address; libFuzzer supplies their main, so ordinary builds leave them out.
if ProcessInfo.processInfo.environment["IGPT_FUZZ"] == "1" {
  package.targets.append(.executableTarget(name: "igpt-fuzz", dependencies: ["IGPTFuzzHarness"], path: "Tests/Fuzz", exclude: ["corpus", "regressions", "run.sh"]))
}
