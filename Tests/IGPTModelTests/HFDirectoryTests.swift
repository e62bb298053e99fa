import Foundation
import Testing
@testable import IGPTKernels
@testable import IGPTModel

/// Hugging Face ImageGPT directories: config.json written and read back, one file or shards,
/// and every field igpt cannot represent refused in one line.
@Suite struct HFDirectoryTests {
  static let config = ModelConfig(layers: 2, embd: 8, heads: 2, seq: 4, vocab: 3)

  static func directory(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "igpt-hf-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
  }

  static func model() throws -> IGPT {
    let m = try IGPT(config: config)
    m.initialize(seed: 4)
    return m
  }

  /// A directory as `save_pretrained` writes it: config.json and tensors without igpt's metadata.
  static func write(_ m: IGPT, to dir: String, config: HFConfig? = nil, shards: Int = 1) throws {
    try (config ?? HFConfig(m.config)).encoded().write(to: URL(fileURLWithPath: dir + "/config.json"))
    try m.withHuggingFaceEntries { entries, _ in
      if shards == 1 {
        try Safetensors.encode(entries, metadata: ["format": "pt"]).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        return
      }
      var map: [String: String] = [:]
      for s in 0..<shards {
        let name = String(format: "model-%05d-of-%05d.safetensors", s + 1, shards)
        let part = entries.enumerated().filter { $0.offset % shards == s }.map(\.element)
        for e in part { map[e.name] = name }
        try Safetensors.encode(part, metadata: ["format": "pt"]).write(to: URL(fileURLWithPath: dir + "/" + name))
      }
      let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
      try index.write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
    }
  }

  static func params(_ m: IGPT) -> [Float] { Array(UnsafeBufferPointer(start: m.params, count: m.parameterCount)) }

  @Test func configJSONRoundTripsTheShapeWithHFsNames() throws {
    let data = try HFConfig(Self.config).encoded()
    let o = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    #expect(o["vocab_size"] as? Int == 4 && o["n_positions"] as? Int == 4 && o["n_embd"] as? Int == 8)
    #expect(o["activation_function"] as? String == "quick_gelu" && o["tie_word_embeddings"] as? Bool == false)
    #expect(o["architectures"] as? [String] == ["ImageGPTForCausalImageModeling"] && o["model_type"] as? String == "imagegpt")
    let back = try JSONDecoder().decode(HFConfig.self, from: data).modelConfig(name: "config.json")
    #expect(back.config == Self.config && back.notes.isEmpty)
  }

  @Test func oneFileAndTwoShardsLoadTheSameModel() throws {
    let m = try Self.model()
    let one = Self.directory("one"), two = Self.directory("two")
    try Self.write(m, to: one)
    try Self.write(m, to: two, shards: 2)
    let a = try HFDirectory.load(one).model, b = try HFDirectory.load(two).model
    #expect(a.config == m.config && b.config == m.config)
    #expect(Self.params(a) == Self.params(m) && Self.params(b) == Self.params(m))
    // HF's own defaults (dropout 0.1) load too, with a note
    let dropout = Self.directory("dropout")
    var hf = HFConfig(m.config)
    hf.residPdrop = 0.1
    try Self.write(m, to: dropout, config: hf)
    #expect(try HFDirectory.load(dropout).notes.first?.contains("dropout") == true)
  }

  @Test func whatIgptCannotComputeIsRefusedInOneLine() throws {
    let m = try Self.model()
    var cases: [(String, (inout HFConfig) -> Void)] = [
      ("activation_function", { $0.activationFunction = "gelu" }),
      ("tie_word_embeddings", { $0.tieWordEmbeddings = true }),
      ("n_inner", { $0.nInner = 7 }),
      ("layer_norm_epsilon", { $0.layerNormEpsilon = 1e-6 }),
      ("model_type", { $0.modelType = "gpt2" }),
      ("vocab_size", { $0.vocabSize = 0 }),
    ]
    cases.append(("scale_attn", { $0.scaleAttnByInverseLayerIdx = true }))
    for (field, change) in cases {
      let dir = Self.directory("bad")
      var hf = HFConfig(m.config)
      change(&hf)
      try Self.write(m, to: dir, config: hf)
      do {
        _ = try HFDirectory.load(dir)
        Issue.record("\(field) accepted")
      } catch {
        let text = "\(error)"
        #expect(text.contains(field) && !text.contains("\n"), "\(text)")
      }
    }
    // a non-zero bias, a missing shard, no weights at all
    let bias = Self.directory("bias")
    try Self.write(m, to: bias)
    var file = try Safetensors.decode(try Data(contentsOf: URL(fileURLWithPath: bias + "/model.safetensors")))
    file.tensors["transformer.h.0.mlp.c_fc.bias"]!.values[3] = 0.5
    let entries = file.tensors.map { k, v in (k, v) }
    let holders = entries.map { $0.1.values }
    try holders.withUnsafeBufferPointers { ptrs in
      let e = zip(entries, ptrs).map { Safetensors.Entry(name: $0.0.0, shape: $0.0.1.shape, data: $0.1) }
      try Safetensors.encode(e, metadata: [:]).write(to: URL(fileURLWithPath: bias + "/model.safetensors"))
    }
    #expect(throws: SafetensorsError.self) { try HFDirectory.load(bias) }
    let shards = Self.directory("shards")
    try Self.write(m, to: shards, shards: 2)
    try FileManager.default.removeItem(atPath: shards + "/model-00002-of-00002.safetensors")
    #expect(throws: SafetensorsError.self) { try HFDirectory.load(shards) }
    let empty = Self.directory("empty")
    try HFConfig(m.config).encoded().write(to: URL(fileURLWithPath: empty + "/config.json"))
    do { _ = try HFDirectory.load(empty) } catch { #expect("\(error)".contains("neither model.safetensors nor")) }
  }
}

extension Array where Element == [Float] {
  /// Calls body with a buffer pointer into each inner array at once.
  func withUnsafeBufferPointers<R>(_ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    func go(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) throws -> R {
      if i == count { return try body(acc) }
      return try self[i].withUnsafeBufferPointer { try go(i + 1, acc + [$0]) }
    }
    return try go(0, [])
  }
}
