import Foundation
import IGPTFuzzHarness
import Testing

/// Every parser `make fuzz` covers, replayed on its committed seeds (each must be accepted, or
/// the corpus would not start where the formats are) and on every input a fuzzer crashed on
/// (Tests/Fuzz/regressions/HARNESS/: each must now be handled without a crash).
@Suite struct FuzzRegressionTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

  static func files(_ dir: String, _ harness: Harness) -> [URL] {
    let d = root.appendingPathComponent(dir).appendingPathComponent(harness.rawValue)
    return ((try? FileManager.default.contentsOfDirectory(at: d, includingPropertiesForKeys: nil)) ?? []).sorted { $0.path < $1.path }
  }

  @Test(arguments: Harness.allCases)
  func seedsAreAcceptedAndKeptCrashesAreHandled(harness: Harness) throws {
    let seeds = Self.files("corpus", harness)
    #expect(!seeds.isEmpty, "no seed corpus for \(harness)")
    for f in seeds { #expect(harness.run(try Data(contentsOf: f)), "\(harness) rejects its seed \(f.lastPathComponent)") }
    for f in Self.files("regressions", harness) { harness.run(try Data(contentsOf: f)) }
  }
}
