import IGPTKernels

/// Autoregressive generation with a key/value cache: one forward step per new token.
///
/// Each step runs every layer on one position for B images, appends that position's keys and
/// values to the cache and attends over the cache through the attention kernels' own tile
/// products (`Attention.HeadCache`): the full forward pass's arithmetic, without recomputing
/// earlier positions (OpenAI's sampler re-runs the whole prefix).
public final class Sampler {
  public let model: IGPT
  public let batch: Int
  /// Positions filled so far.
  public private(set) var position = 0
  private let head: Attention.HeadCache
  private let cache: UnsafeMutablePointer<Float>  // (L, B, H) heads' caches of head.floats each
  private let x, ln, atty, proj: UnsafeMutablePointer<Float>  // (B, C)
  private let qkv: UnsafeMutablePointer<Float>  // (B, 3C)
  private let fch, fchGelu: UnsafeMutablePointer<Float>  // (B, 4C)
  private let rstd: UnsafeMutablePointer<Float>  // (B)
  private let scratch: UnsafeMutablePointer<Float>  // head.scratchFloats
  private let logits: UnsafeMutablePointer<Float>  // (B, V)
  private var allocations: [UnsafeMutablePointer<Float>] = []

  public init(model: IGPT, batch: Int) {
    precondition(model.config.objective == .ar, "sampling needs an AR model")
    self.model = model
    self.batch = batch
    let c = model.config, C = c.embd, T = c.seq
    head = Attention.HeadCache(T: T, D: C / c.heads)
    var all: [UnsafeMutablePointer<Float>] = []
    func make(_ n: Int) -> UnsafeMutablePointer<Float> {
      let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 16))
      p.initialize(repeating: 0, count: max(n, 16))
      all.append(p)
      return p
    }
    cache = make(c.layers * batch * c.heads * head.floats)
    x = make(batch * C); ln = make(batch * C); atty = make(batch * C); proj = make(batch * C)
    qkv = make(batch * 3 * C)
    fch = make(batch * 4 * C); fchGelu = make(batch * 4 * C)
    rstd = make(batch)
    scratch = make(head.scratchFloats)
    logits = make(batch * c.vocab)
    allocations = all
  }

  deinit { for p in allocations { p.deallocate() } }

  /// Floats a sampler for `batch` images of a `config` model allocates (MemoryBudget.sampler).
  public static func floats(_ config: ModelConfig, batch: Int) -> Int {
    let C = config.embd, head = Attention.HeadCache(T: config.seq, D: C / max(1, config.heads))
    let sizes = [config.layers * batch * config.heads * head.floats, 4 * batch * C, batch * 3 * C, 2 * batch * 4 * C,
                 batch, head.scratchFloats, batch * config.vocab]
    return sizes.reduce(0) { $0 + max($1, 16) }
  }

  /// Empties the cache: the next step is position 0. (Positions past the current one are
  /// never read into a result: their scores are left out of the softmax and the sum over V.)
  public func reset() { position = 0 }

  /// Feeds position `position` and returns logits (B, V) predicting its token. `previous` holds
  /// each image's token at position - 1 (ignored at position 0, whose input is sos).
  public func step(previous: [Int32]) -> [Float] {
    let c = model.config, C = c.embd, H = c.heads, D = C / H, T = c.seq, V = c.vocab, B = batch
    let t = position
    guard t < T else { fatalError("the sequence is full (\(T) positions)") }
    let p = model.params, layout = model.layout
    for b in 0..<B {
      let e = t == 0 ? p + layout.sos : p + layout.wte + Int(previous[b]) * C
      let pe = p + layout.wpe + t * C
      for i in 0..<C { x[b * C + i] = e[i] + pe[i] }
    }
    for l in 0..<c.layers {
      let w = layout.blocks[l]
      RMSNorm.forward(out: ln, rstd: rstd, inp: x, g: p + w.ln1, N: B, C: C)
      Matmul.forward(out: qkv, inp: ln, w: p + w.qkvw, N: B, C: C, OC: 3 * C)
      for b in 0..<B {
        for h in 0..<H {
          let hc = cache + ((l * B + b) * H + h) * head.floats, q = qkv + b * 3 * C + h * D
          head.append(hc, key: q + C, value: q + 2 * C, position: t)
          head.attend(out: atty + b * C + h * D, q: q, cache: hc, position: t, scratch: scratch)
        }
      }
      Matmul.forward(out: proj, inp: atty, w: p + w.attprojw, N: B, C: C, OC: C)
      Residual.forward(out: x, a: x, b: proj, N: B * C)
      RMSNorm.forward(out: ln, rstd: rstd, inp: x, g: p + w.ln2, N: B, C: C)
      Matmul.forward(out: fch, inp: ln, w: p + w.fcw, N: B, C: C, OC: 4 * C)
      GELU2.forward(out: fchGelu, sig: fch, inp: fch, N: B * 4 * C)
      Matmul.forward(out: proj, inp: fchGelu, w: p + w.fcprojw, N: B, C: 4 * C, OC: C)
      Residual.forward(out: x, a: x, b: proj, N: B * C)
    }
    RMSNorm.forward(out: ln, rstd: rstd, inp: x, g: p + layout.lnf, N: B, C: C)
    Head.forward(logits: logits, x: ln, w: p + layout.wtet, N: B, C: C, V: V)
    position += 1
    return Array(UnsafeBufferPointer(start: logits, count: B * V))
  }

  /// Draws a token from logits (V) at a temperature, optionally among the top k only.
  public static func draw(_ logits: ArraySlice<Float>, temperature: Float, topK: Int?, rng: inout SeededRandom) -> Int32 {
    var l = Array(logits)
    if temperature <= 0 { return Int32(l.indices.max { l[$0] < l[$1] }!) }
    if let k = topK, k < l.count {
      let threshold = l.sorted(by: >)[k - 1]
      var kept = 0
      for i in l.indices {
        if l[i] >= threshold && kept < k { kept += 1 } else { l[i] = -.infinity }
      }
    }
    let m = l.max()!
    var probs = l.map { $0 == -.infinity ? 0 : Double(FastMath.exp(($0 - m) / temperature)) }
    let total = probs.reduce(0, +)
    for i in probs.indices { probs[i] /= total }
    let u = rng.uniform()
    var acc = 0.0
    for (i, pr) in probs.enumerated() {
      acc += pr
      if u < acc { return Int32(i) }
    }
    return Int32(probs.lastIndex { $0 > 0 } ?? 0)
  }

  /// Generates B sequences of `length` tokens, keeping the first `prefix[b].count` tokens of
  /// each image as given (completion) and sampling the rest. rngs: one per image.
  public func generate(length: Int, prefixes: [[Int32]], temperature: Float, topK: Int?,
                       rngs: inout [SeededRandom], progress: ((Int) -> Void)? = nil) -> [[Int32]] {
    reset()
    let V = model.config.vocab
    var out = [[Int32]](repeating: [], count: batch)
    var previous = [Int32](repeating: 0, count: batch)
    for t in 0..<length {
      let logits = step(previous: previous)
      for b in 0..<batch {
        let token: Int32
        if t < prefixes[b].count {
          token = prefixes[b][t]
        } else {
          token = Self.draw(logits[(b * V)..<((b + 1) * V)], temperature: temperature, topK: topK, rng: &rngs[b])
        }
        out[b].append(token)
        previous[b] = token
      }
      progress?(t + 1)
    }
    return out
  }
}
