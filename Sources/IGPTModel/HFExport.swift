import Foundation

extension IGPT {
  /// Calls body with the model as Hugging Face ImageGPT safetensors entries (every slab tensor
  /// under its HF name, pointing into the parameters, plus the zero biases HF expects) and the
  /// `__metadata__` with the shape. The entries are valid only inside body.
  public func withHuggingFaceEntries<R>(
    extraMetadata: [String: String] = [:], _ body: ([Safetensors.Entry], [String: String]) throws -> R
  ) rethrows -> R {
    let C = config.embd
    let zeros = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4 * C)
    zeros.initialize(repeating: 0)
    defer { zeros.deallocate() }
    func zero(_ n: Int) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(rebasing: zeros[0..<n]) }
    var entries: [Safetensors.Entry] = []
    for t in layout.tensors {
      entries.append(.init(name: t.name, shape: t.shape,
                           data: UnsafeBufferPointer(start: params + t.offset, count: t.count)))
    }
    for l in 0..<config.layers {
      let p = "transformer.h.\(l)."
      entries.append(.init(name: p + "attn.c_attn.bias", shape: [3 * C], data: zero(3 * C)))
      entries.append(.init(name: p + "attn.c_proj.bias", shape: [C], data: zero(C)))
      entries.append(.init(name: p + "mlp.c_fc.bias", shape: [4 * C], data: zero(4 * C)))
      entries.append(.init(name: p + "mlp.c_proj.bias", shape: [C], data: zero(C)))
    }
    var meta = [
      "format": "pt", "n_layer": "\(config.layers)", "n_embd": "\(C)", "n_head": "\(config.heads)",
      "n_vocab": "\(config.vocab)", "n_ctx": "\(config.seq)", "objective": config.objective.rawValue,
    ]
    meta.merge(extraMetadata) { _, new in new }
    return try body(entries, meta)
  }

  /// The model as the bytes of a Hugging Face ImageGPT safetensors file (small models; checkpoints
  /// stream `withHuggingFaceEntries` to disk).
  public func huggingFaceSafetensors(extraMetadata: [String: String] = [:]) throws -> Data {
    try withHuggingFaceEntries(extraMetadata: extraMetadata) { try Safetensors.encode($0, metadata: $1) }
  }
}
