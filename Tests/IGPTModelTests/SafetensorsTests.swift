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

  /// Hostile headers: shapes whose element count overflows, negative or reversed offsets, and
  /// metadata describing a model far larger than the file are one-line errors, not traps,
  /// wild reads or a terabyte allocation (release builds do not trap on overflow).
  @Test func hostileHeadersAreRefused() throws {
    func file(_ header: String, body: Int = 16) -> Data {
      var json = Data(header.utf8)
      while json.count % 8 != 0 { json.append(0x20) }
      var d = Data()
      withUnsafeBytes(of: UInt64(json.count).littleEndian) { d.append(contentsOf: $0) }
      return d + json + Data(count: body)
    }
    let cases = [
      #"{"x.bias":{"dtype":"F32","shape":[2305843009213693950],"data_offsets":[4611686018427387904,-4611686018427387912]}}"#,
      #"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
      #"{"x":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}}"#,
      #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
      #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
    ]
    for h in cases {
      #expect(throws: SafetensorsError.self, "\(h)") { _ = try file(h).withUnsafeBytes { try Safetensors.index($0, name: "f") } }
    }
    let big = file(#"{"__metadata__":{"n_layer":"48","n_embd":"16384","n_head":"16","n_ctx":"1024","n_vocab":"512"}}"#)
    #expect {
      try big.withUnsafeBytes { try IGPT.load(huggingFace: $0, name: "big.safetensors") }
    } throws: { "\($0)".contains("too few") }
    let absurd = file(#"{"__metadata__":{"n_layer":"2","n_embd":"2147483648","n_head":"1","n_ctx":"4","n_vocab":"4"}}"#)
    #expect {
      try absurd.withUnsafeBytes { try IGPT.load(huggingFace: $0, name: "absurd.safetensors") }
    } throws: { "\($0)".contains("n_embd") }
  }
}
