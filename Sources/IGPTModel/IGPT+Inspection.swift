import IGPTKernels

extension IGPT {
  /// L2 norm of each gradient tensor, keyed like torch_igpt.py's `hf_grad_norms` (wte and sos apart).
  public func gradientNorms() -> [String: Double] {
    func norm(_ offset: Int, _ count: Int) -> Double {
      var s = 0.0
      for i in 0..<count { s += Double(grads[offset + i]) * Double(grads[offset + i]) }
      return s.squareRoot()
    }
    let C = config.embd, V = config.vocab
    var out: [String: Double] = [
      "transformer.wte.weight[:V]": norm(layout.wte, V * C),
      "transformer.wte.weight[V] (sos)": norm(layout.sos, C),
    ]
    for t in layout.tensors where t.name != "transformer.wte.weight" {
      out[t.name] = norm(t.offset, t.count)
    }
    return out
  }

  /// Moves the head and norm gains off their initial values (zero, one), so gradients reach every
  /// tensor: the head starts at zero, which makes every gradient below it zero.
  public func perturbForTesting(rng: inout SeededRandom) {
    for i in 0..<(config.vocab * config.embd) { params[layout.wtet + i] = Float(rng.normal() * 0.1) }
    var gains = [layout.lnf]
    for b in layout.blocks { gains += [b.ln1, b.ln2] }
    for g in gains {
      for i in 0..<config.embd { params[g + i] = 1 + Float(rng.normal() * 0.2) }
    }
  }
}
