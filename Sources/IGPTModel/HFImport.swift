import Foundation

extension IGPT {
  /// Builds a model from a Hugging Face ImageGPT-layout safetensors file: the shape from its
  /// `__metadata__` (n_layer, n_embd, n_head, n_vocab, n_ctx, objective), every tensor checked
  /// against it, and biases required to be zero (iGPT has none). `name` prefixes errors.
  public convenience init(huggingFace file: Safetensors.File, name: String) throws {
    func fail(_ why: String) -> Error { SafetensorsError("\(name): \(why)") }
    let meta = file.metadata
    func int(_ key: String) throws -> Int {
      guard let s = meta[key], let v = Int(s) else { throw fail("__metadata__ has no integer \(key)") }
      return v
    }
    let objective = ModelConfig.Objective(rawValue: meta["objective"] ?? "ar") ?? .ar
    let config = ModelConfig(layers: try int("n_layer"), embd: try int("n_embd"), heads: try int("n_head"),
                             seq: try int("n_ctx"), vocab: try int("n_vocab"), objective: objective)
    do { try self.init(config: config) } catch { throw fail("\(error)") }
    for t in layout.tensors {
      guard let got = file.tensors[t.name] else { throw fail("missing tensor \(t.name)") }
      guard got.shape == t.shape else { throw fail("\(t.name) has shape \(got.shape), expected \(t.shape)") }
      got.values.withUnsafeBufferPointer { (params + t.offset).update(from: $0.baseAddress!, count: t.count) }
    }
    for (key, value) in file.tensors where key.hasSuffix(".bias") {
      if value.values.contains(where: { $0 != 0 }) {
        throw fail("\(key) is not zero: iGPT has no biases, so this is not an iGPT model")
      }
    }
  }

  /// Loads a model.safetensors file.
  public convenience init(huggingFacePath path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw SafetensorsError("\(path): cannot be read (missing or not a file)")
    }
    try self.init(huggingFace: try Safetensors.decode(data, name: path), name: path)
  }
}
