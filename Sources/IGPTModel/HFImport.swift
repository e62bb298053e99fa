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
    let model: IGPT
    do { model = try IGPT(config: config) } catch { throw fail("\(error)") }
    for t in model.layout.tensors {
      guard let got = index.tensors[t.name] else { throw fail("missing tensor \(t.name)") }
      guard got.shape == t.shape else { throw fail("\(t.name) has shape \(got.shape), expected \(t.shape)") }
      index.copy(t.name, from: raw, to: model.params + t.offset)
    }
    for (key, t) in index.tensors where key.hasSuffix(".bias") {
      let values = UnsafeRawBufferPointer(rebasing: raw[t.bytes])
      for i in 0..<(t.bytes.count / 4) where values.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) != 0 {
        throw fail("\(key) is not zero: iGPT has no biases, so this is not an iGPT model")
      }
    }
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
