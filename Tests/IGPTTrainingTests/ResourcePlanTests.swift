import Foundation
import Testing
@testable import IGPTModel
@testable import IGPTTraining

/// Training's plan: what the documentation says fits still starts; what cannot fit is refused.
@Suite(.serialized) struct ResourcePlanTests {
  @Test func igptLsOneStepRunFitsIn24GiBAndLessIsRefused() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var c = try RunConfig.load(path: root.appendingPathComponent("configs/igpt-l.yaml").path)
    c.train.batch = 1
    c.train.microbatch = 1
    let shape = ModelConfig.presets["igpt-l"]!
    defer { MemoryBudget.limit = nil }
    MemoryBudget.limit = 24 * 0x1p30
    try ResourcePlan.training(c, model: shape, trainImages: 10, computes: true)
    MemoryBudget.limit = 16 * 0x1p30
    #expect(throws: MemoryBudgetError.self) { try ResourcePlan.training(c, model: shape, trainImages: 10, computes: true) }
    #expect(throws: ConfigError.self) {
      c.train.batch = 11
      try ResourcePlan.training(c, model: shape, trainImages: 10, computes: true)
    }
  }

  @Test func configsAreBoundedBeforeYAMLExpandsThem() throws {
    #expect(throws: ConfigError.self) { try RunConfig.parse("a: &x [1, 2]\nb: *x\n") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("train: {lr: *x}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse(String(repeating: "#\n", count: RunConfig.maxConfigBytes)) }
    // stars and ampersands in comments and quoted strings are not aliases
    _ = try RunConfig.parse("# 2 * 3 & more\ndata: {store: \"a*b&c\"}  # *x\n")
  }
}

extension ResourcePlanTests {
  /// Numbers Yams would trap on while reading them are refused first; addresses are not numbers.
  @Test func numbersThatOverflowTheReaderAreRefused() throws {
    #expect(throws: ConfigError.self) { try RunConfig.parse("train: {steps: 15:99999999999999999999}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("train: {steps: \(String(repeating: "9", count: 40))}") }
    _ = try RunConfig.parse("data: {store: tcp://127.0.0.1:5555}\n")
  }
}
