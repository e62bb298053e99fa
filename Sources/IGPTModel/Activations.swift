import IGPTKernels

/// Every activation and activation-gradient buffer for one (batch, sequence) shape, carved out
/// of one slab allocated once and reused by every step of that shape.
final class Activations {
  let B: Int, T: Int
  let slab: UnsafeMutablePointer<Float>
  let count: Int

  // Kept for backward, per layer: pointer to layer 0; layer l is at + l * stride.
  let encoded: UnsafeMutablePointer<Float>  // (B, T, C)
  let ln1, ln2, atty, residual2, residual3: UnsafeMutablePointer<Float>  // (L, B, T, C)
  let ln1Rstd, ln2Rstd: UnsafeMutablePointer<Float>  // (L, B, T)
  let qkv: UnsafeMutablePointer<Float>  // (L, B, T, 3C)
  let lse: UnsafeMutablePointer<Float>  // (L, B, H, T) attention log-sum-exp per score row
  let fch, fchGelu: UnsafeMutablePointer<Float>  // (L, B, T, 4C); fch ends as sigmoid(1.702 fch)
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

  init(config c: ModelConfig, B: Int, T: Int, threads: Int) {
    self.B = B
    self.T = T
    let L = c.layers, C = c.embd, H = c.heads, V = c.vocab
    let BT = B * T
    // Buffer sizes in slab order; each buffer starts on a 64-byte boundary.
    let sizes = [
      BT * C,  // encoded
      L * BT * C, L * BT * C, L * BT * C, L * BT * C, L * BT * C,  // ln1 ln2 atty residual2 residual3
      L * BT, L * BT,  // ln1Rstd ln2Rstd
      L * BT * 3 * C, L * B * H * T,  // qkv lse
      L * BT * 4 * C, L * BT * 4 * C,  // fch fchGelu
      BT * C, BT,  // lnf lnfRstd
      BT * V, BT, BT, BT,  // logits losses weights targets
      BT * C, BT * C, BT * C, BT * C,  // proj dresidual dln datty
      BT * 3 * C, BT * 4 * C,  // dqkv dfch
      Attention.scratchCount(T: T, D: C / H, threads: threads), threads * C,  // attScratch normScratch
    ]
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

  /// Bytes held.
  var bytes: Int { count * MemoryLayout<Float>.stride }
}
