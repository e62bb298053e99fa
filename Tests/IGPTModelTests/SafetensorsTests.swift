import Foundation
import Testing
@testable import IGPTKernels
@testable import IGPTModel

@Suite struct SafetensorsTests {
  @Test func hfExportRoundTripsWithZeroBiasesAndMetadata() throws {
    let config = ModelConfig(layers: 2, embd: 8, heads: 2, seq: 4, vocab: 3, objective: .bert)
    let model = try IGPT(config: config)
    model.initialize(seed: 1)
    let file = try Safetensors.decode(try model.huggingFaceSafetensors())
    #expect(file.metadata["n_head"] == "2" && file.metadata["n_layer"] == "2")
    #expect(file.metadata["n_vocab"] == "3" && file.metadata["n_ctx"] == "4")
    #expect(file.metadata["objective"] == "bert")
    for t in model.layout.tensors {
      let got = try #require(file.tensors[t.name])
      #expect(got.shape == t.shape)
      #expect(got.values == Array(UnsafeBufferPointer(start: model.params + t.offset, count: t.count)))
    }
    #expect(file.tensors["transformer.wte.weight"]?.shape == [4, 8])  // V + 1 rows: sos last
    let bias = try #require(file.tensors["transformer.h.1.mlp.c_fc.bias"])
    #expect(bias.shape == [32] && bias.values.allSatisfy { $0 == 0 })
  }

  @Test func malformedFilesAreRefused() throws {
    #expect(throws: SafetensorsError.self) { try Safetensors.decode(Data([1, 2, 3])) }
    var huge = Data(count: 16)
    huge[0] = 0xff; huge[7] = 0x7f
    #expect(throws: SafetensorsError.self) { try Safetensors.decode(huge) }
    let model = try IGPT(config: ModelConfig(layers: 1, embd: 4, heads: 1, seq: 2, vocab: 2))
    let good = try model.huggingFaceSafetensors()
    #expect(throws: SafetensorsError.self) { try Safetensors.decode(good.prefix(good.count - 4)) }
  }
}
