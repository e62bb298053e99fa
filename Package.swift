// swift-tools-version:6.0
import PackageDescription

/// Release builds drop Swift's runtime checks in the numeric hot loops (platform-notes.md).
let releaseFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
  name: "igpt",
  platforms: [.macOS(.v13)],
  products: [.executable(name: "igpt", targets: ["igpt"])],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
  ],
  targets: [
    // Thin C shims over Debian's system libraries, found through pkg-config.
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
    .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .target(name: "CImage"),  // stb headers from libstb-dev; the implementation compiled here

    .target(name: "IGPTKernels", dependencies: ["CBLAS"], swiftSettings: releaseFlags),
    .target(name: "IGPTModel", dependencies: ["IGPTKernels"], swiftSettings: releaseFlags),
    .target(
      name: "IGPTData", dependencies: ["IGPTKernels", "IGPTModel", "CImage", "CZlib"],
      swiftSettings: releaseFlags),
    .target(
      name: "IGPTTraining", dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "Yams"],
      swiftSettings: releaseFlags),
    .target(name: "IGPTProbe", dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "CBLAS"], swiftSettings: releaseFlags),
    .target(
      name: "IGPTCluster", dependencies: ["IGPTKernels", "IGPTModel", "IGPTData", "IGPTTraining", "IGPTProbe", "CZeroMQ", "CLZ4"],
      swiftSettings: releaseFlags),
    .executableTarget(
      name: "igpt",
      dependencies: [
        "IGPTKernels", "IGPTModel", "IGPTData", "IGPTTraining", "IGPTCluster", "IGPTProbe",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: releaseFlags),

    .testTarget(name: "IGPTKernelsTests", dependencies: ["IGPTKernels"]),
    .testTarget(name: "IGPTModelTests", dependencies: ["IGPTModel", "IGPTKernels"]),
    // Fixture writers (IDX, gzip, CIFAR, PNG) shared by the data and end-to-end tests.
    .target(name: "IGPTTestSupport", dependencies: ["CImage", "CZlib"], path: "Tests/IGPTTestSupport"),
    .testTarget(name: "IGPTDataTests", dependencies: ["IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport"]),
    .testTarget(
      name: "IGPTTrainingTests",
      dependencies: ["IGPTTraining", "IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport"]),
    .testTarget(name: "IGPTProbeTests", dependencies: ["IGPTProbe", "IGPTModel", "IGPTKernels"]),
    .testTarget(
      name: "IGPTClusterTests",
      dependencies: ["IGPTCluster", "IGPTTraining", "IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport"]),
    .testTarget(
      name: "IGPTEndToEndTests",
      dependencies: ["IGPTCluster", "IGPTTraining", "IGPTData", "IGPTModel", "IGPTKernels", "IGPTTestSupport"]),
  ],
  swiftLanguageModes: [.v5]
)
