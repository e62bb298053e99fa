import Testing
@testable import IGPTModel

/// The sizes memory checks plan with are the sizes the model then allocates.
@Suite struct MemoryBudgetTests {
  @Test func plannedSizesAreTheAllocatedOnes() throws {
    for (c, B, T, threads, recompute) in [(ModelConfig(layers: 2, embd: 32, heads: 2, seq: 64, vocab: 16), 3, 64, 2, false),
                                          (ModelConfig(layers: 3, embd: 48, heads: 3, seq: 50, vocab: 9), 1, 37, 1, true)] {
      let a = Activations(config: c, B: B, T: T, threads: threads, recompute: recompute)
      let planned = MemoryBudget.activations(c, batch: B, seq: T, threads: threads, recompute: recompute)
      #expect(planned >= Double(4 * a.count) && planned <= Double(4 * a.count) + 4 * 64 * 30, "\(planned) vs \(4 * a.count)")
      #expect(MemoryBudget.parameterFloats(c) == Double(ParameterLayout(c).count))
    }
    // no shape overflows the plan
    let absurd = ModelConfig(layers: 4096, embd: 65_536, heads: 1, seq: 1 << 20, vocab: 65_536)
    #expect(MemoryBudget.activations(absurd, batch: Int.max, seq: 1 << 20, threads: 64, recompute: false).isFinite)
  }

  @Test func sizesParseAndTheCheckSaysBoth() throws {
    #expect(MemoryBudget.parse("16G") == 16 * 0x1p30 && MemoryBudget.parse("512m") == 512 * 0x1p20 && MemoryBudget.parse("1000") == 1000)
    #expect(MemoryBudget.parse("1.5TB") == 1.5 * 0x1p40)
    #expect(MemoryBudget.parse("lots") == nil && MemoryBudget.parse("-1G") == nil && MemoryBudget.parse("") == nil)
    #expect(throws: MemoryBudgetError.self) { try MemoryBudget.check(MemoryBudget.available * 2, for: "x") }
    try MemoryBudget.check(1, for: "x")
    #expect(throws: ModelConfigError.self) { try ModelConfig(layers: 5000, embd: 8, heads: 1, seq: 4, vocab: 4).validate() }
    #expect(throws: ModelConfigError.self) { try ModelConfig(layers: 1, embd: 1 << 17, heads: 1, seq: 4, vocab: 4).validate() }
  }
}
