/// Where each parameter tensor lives in the flat slab, under its Hugging Face ImageGPT name.
///
/// Order: wte and sos (adjacent, so together they are HF's (V+1, C) `transformer.wte.weight`),
/// wpe, then per block ln_1, c_attn, attn c_proj, ln_2, c_fc, mlp c_proj, then ln_f and the head.
/// Weights are stored (in, out) as HF's Conv1D does, so y = x @ W with no transpose anywhere.
public struct ParameterLayout: Sendable {
  /// One named tensor: its HF name, shape and offset (in floats) into the slab.
  public struct Tensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
  }

  /// Offsets of one block's tensors.
  public struct Block: Sendable {
    public let ln1, qkvw, attprojw, ln2, fcw, fcprojw: Int
  }

  public let tensors: [Tensor]
  public let count: Int
  public let wte: Int, sos: Int, wpe: Int, lnf: Int, wtet: Int
  public let blocks: [Block]

  public init(_ c: ModelConfig) {
    var tensors: [Tensor] = []
    var offset = 0
    func add(_ name: String, _ shape: [Int]) -> Int {
      let t = Tensor(name: name, shape: shape, offset: offset)
      tensors.append(t)
      offset += t.count
      return t.offset
    }
    let C = c.embd, V = c.vocab
    wte = add("transformer.wte.weight", [V + 1, C])
    sos = wte + V * C
    wpe = add("transformer.wpe.weight", [c.seq, C])
    var blocks: [Block] = []
    for l in 0..<c.layers {
      let p = "transformer.h.\(l)."
      blocks.append(
        Block(
          ln1: add(p + "ln_1.weight", [C]),
          qkvw: add(p + "attn.c_attn.weight", [C, 3 * C]),
          attprojw: add(p + "attn.c_proj.weight", [C, C]),
          ln2: add(p + "ln_2.weight", [C]),
          fcw: add(p + "mlp.c_fc.weight", [C, 4 * C]),
          fcprojw: add(p + "mlp.c_proj.weight", [4 * C, C])))
    }
    self.blocks = blocks
    lnf = add("transformer.ln_f.weight", [C])
    wtet = add("lm_head.weight", [V, C])
    self.tensors = tensors
    self.count = offset
  }

  /// The tensor with this HF name, if any.
  public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }
}
