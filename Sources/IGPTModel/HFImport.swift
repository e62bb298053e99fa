import Foundation

extension IGPT {
  /// Builds a model from the bytes of a Hugging Face ImageGPT-layout safetensors file: the shape
  /// from its `__metadata__` (n_layer, n_embd, n_head, n_vocab, n_ctx, objective), every tensor
  /// checked against it and copied straight into the slab, and biases required to be zero (iGPT
  /// has none). `name` prefixes errors.
  public static func load(huggingFace raw: UnsafeRawBufferPointer, name: String) throws -> IGPT {
    func fail(_ why: String) -> Error { SafetensorsError("\(name): \(why)") }
    let index = try Safetensors.index(raw, name: name)
    let meta = index.metadata
    func int(_ key: String) throws -> Int {
      guard let s = meta[key], let v = Int(s) else { throw fail("__metadata__ has no integer \(key)") }
      return v
    }
    let objective = ModelConfig.Objective(rawValue: meta["objective"] ?? "ar") ?? .ar
    let config = ModelConfig(layers: try int("n_layer"), embd: try int("n_embd"), heads: try int("n_head"),
                             seq: try int("n_ctx"), vocab: try int("n_vocab"), objective: objective)
    // Before allocating anything from the metadata: sane sizes, and a file that can hold them.
    // (with these caps the layout's products cannot overflow: 12 * 2^40 * 2^12 < 2^63)
    for (key, v, cap) in [("n_layer", config.layers, 1 << 12), ("n_embd", config.embd, 1 << 20),
                          ("n_ctx", config.seq, 1 << 20), ("n_vocab", config.vocab, 1 << 20)]
    where v < 1 || v > cap {
      throw fail("__metadata__ \(key) = \(v) is outside 1...\(cap)")
    }
    do { try config.validate() } catch { throw fail("\(error)") }
    let needed = ParameterLayout(config).count * 4
    guard needed <= raw.count else {
      throw fail("holds \(raw.count) bytes, too few for the \(needed) bytes of parameters its __metadata__ describes")
    }
    return try load(huggingFaceShards: [(raw, index, name)], config: config, name: name)
  }

  /// Builds a model of `config` from safetensors files that together hold every tensor (one
  /// file, or the shards of a sharded checkpoint): each tensor checked against the layout and
  /// copied into the slab, biases required to be zero (iGPT has none).
  static func load(
    huggingFaceShards shards: [(raw: UnsafeRawBufferPointer, index: Safetensors.Index, name: String)], config: ModelConfig, name: String
  ) throws -> IGPT {
    func fail(_ why: String) -> Error { SafetensorsError("\(name): \(why)") }
    let model: IGPT
    do { model = try IGPT(config: config) } catch { throw fail("\(error)") }
    var found = Set<String>()
    for shard in shards {
      for t in model.layout.tensors {
        guard let got = shard.index.tensors[t.name] else { continue }
        guard got.shape == t.shape else { throw SafetensorsError("\(shard.name): \(t.name) has shape \(got.shape), expected \(t.shape)") }
        shard.index.copy(t.name, from: shard.raw, to: model.params + t.offset)
        found.insert(t.name)
      }
      for (key, t) in shard.index.tensors where key.hasSuffix(".bias") {
        let values = UnsafeRawBufferPointer(rebasing: shard.raw[t.bytes])
        for i in 0..<(t.bytes.count / 4) where values.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) != 0 {
          throw SafetensorsError("\(shard.name): \(key) is not zero: iGPT has no biases, so igpt cannot compute this model")
        }
      }
    }
    if let missing = model.layout.tensors.first(where: { !found.contains($0.name) }) { throw fail("missing tensor \(missing.name)") }
    return model
  }

  /// Loads a model.safetensors file (mapped, not read into a buffer).
  public static func load(huggingFacePath path: String) throws -> IGPT {
    guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
      throw SafetensorsError("\(path): cannot be read (missing or not a file)")
    }
    return try data.withUnsafeBytes { try load(huggingFace: $0, name: path) }
  }
}
