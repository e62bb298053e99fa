import IGPTKernels

/// Every activation and activation-gradient buffer for one (batch, sequence) shape, carved out
/// of one slab allocated once and reused by every step of that shape.
final class Activations {
  let B: Int, T: Int
  /// Threads the per-thread scratch (attention, norms) is sized for.
  let threads: Int
  let slab: UnsafeMutablePointer<Float>
  let count: Int

  // Kept for backward, per layer slot: pointer to slot 0; slot s is at + s * stride.
  let encoded: UnsafeMutablePointer<Float>  // (B, T, C)
  let ln1, ln2, atty, residual2: UnsafeMutablePointer<Float>  // (slots, B, T, C)
  let residual3: UnsafeMutablePointer<Float>  // (L, B, T, C) each block's output, always kept
  let ln1Rstd, ln2Rstd: UnsafeMutablePointer<Float>  // (slots, B, T)
  let qkv: UnsafeMutablePointer<Float>  // (slots, B, T, 3C)
  let lse: UnsafeMutablePointer<Float>  // (slots, B, H, T) attention log-sum-exp per score row
  let fch, fchGelu: UnsafeMutablePointer<Float>  // (slots, B, T, 4C); fch ends as sigmoid(1.702 fch)
  let lnf: UnsafeMutablePointer<Float>  // (B, T, C)
  let lnfRstd: UnsafeMutablePointer<Float>  // (B, T)
  let logits: UnsafeMutablePointer<Float>  // (B, T, V): logits, then probs, then dlogits
  let losses, weights: UnsafeMutablePointer<Float>  // (B, T)
  let targets: UnsafeMutablePointer<Int32>  // (B, T)

  // Scratch, reused by every layer.
  let proj: UnsafeMutablePointer<Float>  // (B, T, C) attention / MLP output projection
  let dresidual: UnsafeMutablePointer<Float>  // (B, T, C) gradient of the residual stream
  let dln: UnsafeMutablePointer<Float>  // (B, T, C) gradient of a norm's output
  let datty: UnsafeMutablePointer<Float>  // (B, T, C)
  let dqkv: UnsafeMutablePointer<Float>  // (B, T, 3C)
  let dfch: UnsafeMutablePointer<Float>  // (B, T, 4C)
  let attScratch: UnsafeMutablePointer<Float>  // Attention.scratchCount(T:D:threads:)
  let normScratch: UnsafeMutablePointer<Float>  // (threads, C)

  /// Layers whose internals are kept: all of them, or 1 when backward recomputes each block's
  /// internals from its input (the residual stream, always kept for every layer).
  let slots: Int
  let recomputes: Bool

  /// One layer's buffers (block l's slot; residual3 is always layer l's own).
  struct Layer {
    let ln1, ln1Rstd, qkv, lse, atty, residual2, ln2, ln2Rstd, fch, fchGelu, residual3: UnsafeMutablePointer<Float>
  }

  func layer(_ l: Int, C: Int, H: Int) -> Layer {
    let N = B * T, s = recomputes ? 0 : l
    return Layer(
      ln1: ln1 + s * N * C, ln1Rstd: ln1Rstd + s * N, qkv: qkv + s * N * 3 * C,
      lse: lse + s * B * H * T, atty: atty + s * N * C, residual2: residual2 + s * N * C,
      ln2: ln2 + s * N * C, ln2Rstd: ln2Rstd + s * N, fch: fch + s * N * 4 * C,
      fchGelu: fchGelu + s * N * 4 * C, residual3: residual3 + l * N * C)
  }

  /// With `recompute`, only one layer's internals are held (about 1/L of the activation
  /// memory); the model's backward then re-runs each block's forward before its backward.
  init(config c: ModelConfig, B: Int, T: Int, threads: Int, recompute: Bool = false) {
    self.B = B
    self.T = T
    self.threads = threads
    let L = c.layers, C = c.embd, H = c.heads, V = c.vocab
    let S = recompute ? 1 : L
    slots = S
    recomputes = recompute
    let BT = B * T
    let sizes = Self.sizes(L: L, C: C, H: H, V: V, B: B, T: T, slots: S, threads: threads,
                           attentionScratch: Attention.scratchCount(T: T, D: C / H, threads: threads))
    let total = sizes.reduce(0) { $0 + ($1 + 15) / 16 * 16 }
    let base = UnsafeMutablePointer<Float>.allocate(capacity: total)
    base.initialize(repeating: 0, count: total)
    var cursor = 0
    var index = 0
    func next() -> UnsafeMutablePointer<Float> {
      defer {
        cursor += (sizes[index] + 15) / 16 * 16
        index += 1
      }
      return base + cursor
    }
    slab = base
    count = total
    encoded = next()
    ln1 = next(); ln2 = next(); atty = next(); residual2 = next(); residual3 = next()
    ln1Rstd = next(); ln2Rstd = next()
    qkv = next(); lse = next(); fch = next(); fchGelu = next()
    lnf = next(); lnfRstd = next()
    logits = next(); losses = next(); weights = next()
    targets = UnsafeMutableRawPointer(next()).bindMemory(to: Int32.self, capacity: BT)
    proj = next(); dresidual = next(); dln = next(); datty = next()
    dqkv = next(); dfch = next(); attScratch = next(); normScratch = next()
    precondition(index == sizes.count)
  }

  deinit { slab.deallocate() }

  /// Buffer sizes in slab order (each buffer starts on a 64-byte boundary), in floats: in Int
  /// for the slab, in Double for `MemoryBudget` (no overflow whatever the shape).
  static func sizes<N: Numeric>(L: N, C: N, H: N, V: N, B: N, T: N, slots S: N, threads: N, attentionScratch: N) -> [N] {
    let BT = B * T
    return [
      BT * C,  // encoded
      S * BT * C, S * BT * C, S * BT * C, S * BT * C, L * BT * C,  // ln1 ln2 atty residual2 residual3
      S * BT, S * BT,  // ln1Rstd ln2Rstd
      S * BT * 3 * C, S * B * H * T,  // qkv lse
      S * BT * 4 * C, S * BT * 4 * C,  // fch fchGelu
      BT * C, BT,  // lnf lnfRstd
      BT * V, BT, BT, BT,  // logits losses weights targets
      BT * C, BT * C, BT * C, BT * C,  // proj dresidual dln datty
      BT * 3 * C, BT * 4 * C,  // dqkv dfch
      attentionScratch, threads * C,  // attScratch normScratch
    ]
  }

  /// Bytes held.
  var bytes: Int { count * MemoryLayout<Float>.stride }
}
