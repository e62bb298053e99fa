import IGPTKernels

/// The iGPT transformer: parameters and gradients in flat slabs, forward and backward over a
/// batch of token sequences, plus the forward-only views (last-position logits, layer features).
///
/// The forward pass is a loop over blocks calling kernels in model order; backward walks the
/// same list in reverse (llm.c style). Shapes: B batch, T positions, C embd, H heads, V vocab.
public final class IGPT {
  public let config: ModelConfig
  public let layout: ParameterLayout
  /// All parameters, one slab (layout.count floats).
  public let params: UnsafeMutablePointer<Float>
  /// Gradients, same layout; `forwardBackward` adds into it.
  public let grads: UnsafeMutablePointer<Float>
  private var acts: Activations?
  /// Forward-only activations of `allFeatures`' image groups, one per thread.
  private var groupActs: [Activations] = []

  /// Builds a model with zeroed parameters; call `initialize(seed:)` or load a checkpoint.
  public init(config: ModelConfig) throws {
    try config.validate()
    self.config = config
    layout = ParameterLayout(config)
    params = .allocate(capacity: layout.count)
    params.initialize(repeating: 0, count: layout.count)
    grads = .allocate(capacity: layout.count)
    grads.initialize(repeating: 0, count: layout.count)
  }

  deinit {
    params.deallocate()
    grads.deallocate()
  }

  public var parameterCount: Int { layout.count }

  /// OpenAI's initialisation: wte, sos ~ N(0, 0.02); wpe ~ N(0, 0.01); q/k/v ~ N(0, 1/sqrt(C));
  /// attention output ~ N(0, 1/sqrt(C*L)); MLP ~ N(0, 0.02); norm gains 1; head 0.
  public func initialize(seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    let C = config.embd, L = config.layers, V = config.vocab
    func normal(_ offset: Int, _ count: Int, _ std: Double) {
      for i in 0..<count { params[offset + i] = Float(rng.normal() * std) }
    }
    func fill(_ offset: Int, _ count: Int, _ value: Float) {
      (params + offset).update(repeating: value, count: count)
    }
    normal(layout.wte, V * C, 0.02)
    normal(layout.sos, C, 0.02)
    normal(layout.wpe, config.seq * C, 0.01)
    for b in layout.blocks {
      fill(b.ln1, C, 1)
      normal(b.qkvw, C * 3 * C, 1 / Double(C).squareRoot())
      normal(b.attprojw, C * C, 1 / Double(C * L).squareRoot())
      fill(b.ln2, C, 1)
      normal(b.fcw, C * 4 * C, 0.02)
      normal(b.fcprojw, 4 * C * C, 0.02)
    }
    fill(layout.lnf, C, 1)
    fill(layout.wtet, V * C, 0)
  }

  public func zeroGradients() { grads.update(repeating: 0, count: layout.count) }

  /// Whether training steps keep one layer's activations and recompute the others in backward:
  /// about 1/L of the activation memory for one more forward pass per step, the same bytes.
  public var recomputeActivations = false

  /// Activation memory for shape (B, T), allocated on first use of that shape and kept.
  /// `recompute` nil accepts either kind (forward-only callers, which never look at an earlier
  /// layer's slot) and allocates one slot: less memory, and buffers that stay in cache.
  private func activations(_ B: Int, _ T: Int, recompute: Bool?) -> Activations {
    // the scratch is per thread: a process may change Parallel.threads (a worker between runs)
    if let a = acts, a.B == B, a.T == T, a.threads == Parallel.threads, recompute == nil || a.recomputes == recompute {
      return a
    }
    acts = nil
    let a = Activations(config: config, B: B, T: T, threads: Parallel.threads, recompute: recompute ?? true)
    acts = a
    return a
  }

  /// Bytes of activation memory currently held.
  public var activationBytes: Int { acts?.bytes ?? 0 }

  // MARK: - Training

  /// Forward and backward over tokens (B, T) (T = length, default config.seq); adds
  /// lossScale * d(loss)/d(params) into `grads` and returns the loss (not scaled).
  /// BERT needs `mask` (B, T), 1 = masked; AR ignores it.
  @discardableResult
  public func forwardBackward(
    tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>? = nil, batch B: Int,
    length: Int? = nil, lossScale: Float = 1,
    finalNormGradient: ((_ lnf: UnsafePointer<Float>, _ dlnf: UnsafeMutablePointer<Float>) -> Void)? = nil
  ) -> Double {
    let T = length ?? config.seq
    let a = activations(B, T, recompute: recomputeActivations)
    let loss = forward(a, tokens: tokens, mask: mask, B: B, T: T, lossScale: lossScale, training: true)
    backward(a, tokens: tokens, mask: mask, B: B, T: T, finalNormGradient: finalNormGradient)
    return loss
  }

  /// The loss on tokens (B, T) (forward only).
  public func loss(
    tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>? = nil, batch B: Int,
    length: Int? = nil
  ) -> Double {
    let T = length ?? config.seq
    return forward(activations(B, T, recompute: nil), tokens: tokens, mask: mask, B: B, T: T, lossScale: 1, training: false)
  }

  private var isCausal: Bool { config.objective == .ar }

  private func checkedMask(_ mask: UnsafePointer<UInt8>?) -> UnsafePointer<UInt8>? {
    if isCausal { return nil }
    guard mask != nil else { fatalError("the BERT objective needs a mask") }
    return mask
  }

  /// Runs blocks 0..<layers, leaving every activation in `a`. Returns the residual stream out.
  private func blocks(
    _ a: Activations, tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>?,
    B: Int, T: Int, layers: Int, stopAtNorm: Bool = false, training: Bool = false,
    afterBlock: ((Int, Activations.Layer) -> Void)? = nil
  ) -> UnsafeMutablePointer<Float> {
    guard T >= 1 && T <= config.seq else { fatalError("sequence length \(T) outside 1...\(config.seq)") }
    let C = config.embd, H = config.heads, N = B * T
    let p = params
    StepProfile.measure("encoder_forward") {
      Encoder.forward(
        out: a.encoded, tokens: tokens, wte: p + layout.wte, sos: p + layout.sos,
        wpe: p + layout.wpe, mask: checkedMask(mask), B: B, T: T, C: C)
    }
    var residual = a.encoded
    for l in 0..<layers {
      if stopAtNorm && l == layers - 1 {
        let x = a.layer(l, C: C, H: H)
        StepProfile.measure("rmsnorm_forward") {
          RMSNorm.forward(out: x.ln1, rstd: x.ln1Rstd, inp: residual, g: p + layout.blocks[l].ln1, N: N, C: C)
        }
        return residual
      }
      residual = block(l, a, input: residual, B: B, T: T, training: training)
      afterBlock?(l, a.layer(l, C: C, H: H))
    }
    return residual
  }

  /// Block l's forward from its input (B, T, C) into its activation slot; returns its output.
  /// `training` false skips what only backward reads (gelu's sigmoid).
  private func block(_ l: Int, _ a: Activations, input residual: UnsafePointer<Float>, B: Int, T: Int, training: Bool = true)
    -> UnsafeMutablePointer<Float>
  {
    let C = config.embd, H = config.heads, N = B * T
    let p = params, w = layout.blocks[l], x = a.layer(l, C: C, H: H)
    StepProfile.measure("rmsnorm_forward") {
      RMSNorm.forward(out: x.ln1, rstd: x.ln1Rstd, inp: residual, g: p + w.ln1, N: N, C: C)
    }
    StepProfile.measure("matmul_forward") {
      Matmul.forward(out: x.qkv, inp: x.ln1, w: p + w.qkvw, N: N, C: C, OC: 3 * C)
    }
    StepProfile.measure("attention_forward") {
      Attention.forward(
        out: x.atty, lse: x.lse, qkv: x.qkv, scratch: a.attScratch, causal: isCausal,
        B: B, T: T, C: C, H: H)
    }
    StepProfile.measure("matmul_forward") {
      Matmul.forward(out: a.proj, inp: x.atty, w: p + w.attprojw, N: N, C: C, OC: C)
    }
    StepProfile.measure("residual_forward") {
      Residual.forward(out: x.residual2, a: residual, b: a.proj, N: N * C)
    }
    StepProfile.measure("rmsnorm_forward") {
      RMSNorm.forward(out: x.ln2, rstd: x.ln2Rstd, inp: x.residual2, g: p + w.ln2, N: N, C: C)
    }
    StepProfile.measure("matmul_forward") {
      Matmul.forward(out: x.fch, inp: x.ln2, w: p + w.fcw, N: N, C: C, OC: 4 * C)
    }
    StepProfile.measure("gelu2_forward") {
      GELU2.forward(out: x.fchGelu, sig: training ? x.fch : nil, inp: x.fch, N: N * 4 * C)
    }
    StepProfile.measure("matmul_forward") {
      Matmul.forward(out: a.proj, inp: x.fchGelu, w: p + w.fcprojw, N: N, C: 4 * C, OC: C)
    }
    StepProfile.measure("residual_forward") {
      Residual.forward(out: x.residual3, a: x.residual2, b: a.proj, N: N * C)
    }
    return x.residual3
  }

  /// Full forward with the loss; leaves probabilities in a.logits and weights in a.weights.
  private func forward(
    _ a: Activations, tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>?,
    B: Int, T: Int, lossScale: Float, training: Bool
  ) -> Double {
    let C = config.embd, V = config.vocab, N = B * T
    let residual = blocks(a, tokens: tokens, mask: mask, B: B, T: T, layers: config.layers, training: training)
    StepProfile.measure("rmsnorm_forward") {
      RMSNorm.forward(out: a.lnf, rstd: a.lnfRstd, inp: residual, g: params + layout.lnf, N: N, C: C)
    }
    StepProfile.measure("head_forward") {
      Head.forward(logits: a.logits, x: a.lnf, w: params + layout.wtet, N: N, C: C, V: V)
    }
    for i in 0..<N {
      let t = tokens[i]
      guard t >= 0 && Int(t) < V else { fatalError("token \(t) outside the palette 0..<\(V)") }
      a.targets[i] = t
    }
    lossWeights(a.weights, mask: checkedMask(mask), B: B, T: T)
    StepProfile.measure("cross_entropy_forward") {
      CrossEntropy.forward(losses: a.losses, logits: a.logits, targets: a.targets, N: N, V: V)
    }
    let loss = CrossEntropy.weightedSum(losses: a.losses, weights: a.weights, N: N)
    if lossScale != 1 {
      for i in 0..<N { a.weights[i] *= lossScale }
    }
    return loss
  }

  /// AR: 1/(B*T) everywhere. BERT: 1/(masked in the image * B) at masked positions, else 0.
  private func lossWeights(_ w: UnsafeMutablePointer<Float>, mask: UnsafePointer<UInt8>?, B: Int, T: Int) {
    guard let mask else {
      w.update(repeating: 1 / Float(B * T), count: B * T)
      return
    }
    for b in 0..<B {
      var masked = 0
      for t in 0..<T where mask[b * T + t] != 0 { masked += 1 }
      let value = masked == 0 ? 0 : 1 / (Float(masked) * Float(B))
      for t in 0..<T { w[b * T + t] = mask[b * T + t] != 0 ? value : 0 }
    }
  }

  /// `finalNormGradient` (fine-tuning) sees ln_f's output (B, T, C) and adds the gradient of
  /// another loss on it (a classifier's) into dlnf before the backward pass continues.
  private func backward(
    _ a: Activations, tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>?, B: Int, T: Int,
    finalNormGradient: ((UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)? = nil
  ) {
    let C = config.embd, H = config.heads, V = config.vocab, N = B * T, L = config.layers
    let p = params, g = grads
    StepProfile.measure("cross_entropy_backward") {
      CrossEntropy.backward(
        dlogits: a.logits, probs: a.logits, targets: a.targets, weights: a.weights, N: N, V: V)
    }
    a.dln.update(repeating: 0, count: N * C)
    StepProfile.measure("head_backward") {
      Head.backward(
        dx: a.dln, dw: g + layout.wtet, dlogits: a.logits, x: a.lnf, w: p + layout.wtet,
        N: N, C: C, V: V)
    }
    finalNormGradient?(a.lnf, a.dln)
    let dres = a.dresidual
    dres.update(repeating: 0, count: N * C)
    StepProfile.measure("rmsnorm_backward") {
      RMSNorm.backward(
        dinp: dres, dg: g + layout.lnf, dout: a.dln, inp: a.residual3 + (L - 1) * N * C,
        g: p + layout.lnf, rstd: a.lnfRstd, scratch: a.normScratch, N: N, C: C)
    }
    // dres is the gradient of the residual stream; a residual add passes it through unchanged,
    // so each branch's backward adds its input gradient into dres.
    for l in stride(from: L - 1, through: 0, by: -1) {
      let w = layout.blocks[l]
      let residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * N * C
      // With one activation slot, block l's internals are rebuilt from its kept input (the
      // same kernels on the same input: the same bytes); the last block's are still there.
      if a.recomputes && l < L - 1 { _ = block(l, a, input: residual, B: B, T: T) }
      let x = a.layer(l, C: C, H: H)
      let ln1 = x.ln1, ln1Rstd = x.ln1Rstd, qkv = x.qkv, lse = x.lse, atty = x.atty
      let residual2 = x.residual2, ln2 = x.ln2, ln2Rstd = x.ln2Rstd, fch = x.fch, fchGelu = x.fchGelu

      StepProfile.measure("matmul_backward") {
        Matmul.backward(
          dinp: a.dfch, dw: g + w.fcprojw, dout: dres, inp: fchGelu, w: p + w.fcprojw,
          N: N, C: 4 * C, OC: C)
      }
      StepProfile.measure("gelu2_backward") {
        GELU2.backward(dinp: a.dfch, dout: a.dfch, out: fchGelu, sig: fch, N: N * 4 * C)
      }
      StepProfile.measure("matmul_backward") {
        Matmul.backward(
          dinp: a.dln, dw: g + w.fcw, dout: a.dfch, inp: ln2, w: p + w.fcw, N: N, C: C, OC: 4 * C)
      }
      StepProfile.measure("rmsnorm_backward") {
        RMSNorm.backward(
          dinp: dres, dg: g + w.ln2, dout: a.dln, inp: residual2, g: p + w.ln2, rstd: ln2Rstd,
          scratch: a.normScratch, N: N, C: C)
      }
      StepProfile.measure("matmul_backward") {
        Matmul.backward(
          dinp: a.datty, dw: g + w.attprojw, dout: dres, inp: atty, w: p + w.attprojw,
          N: N, C: C, OC: C)
      }
      StepProfile.measure("attention_backward") {
        Attention.backward(
          dqkv: a.dqkv, dout: a.datty, out: atty, qkv: qkv, lse: lse, scratch: a.attScratch, causal: isCausal,
          B: B, T: T, C: C, H: H)
      }
      StepProfile.measure("matmul_backward") {
        Matmul.backward(
          dinp: a.dln, dw: g + w.qkvw, dout: a.dqkv, inp: ln1, w: p + w.qkvw, N: N, C: C, OC: 3 * C)
      }
      StepProfile.measure("rmsnorm_backward") {
        RMSNorm.backward(
          dinp: dres, dg: g + w.ln1, dout: a.dln, inp: residual, g: p + w.ln1, rstd: ln1Rstd,
          scratch: a.normScratch, N: N, C: C)
      }
    }
    StepProfile.measure("encoder_backward") {
      Encoder.backward(
        dwte: g + layout.wte, dsos: g + layout.sos, dwpe: g + layout.wpe, dout: dres,
        tokens: tokens, mask: checkedMask(mask), B: B, T: T, C: C)
    }
  }

  // MARK: - Forward-only views

  /// Logits (B, V) for the token at position n given prefix (B, n), 0 <= n < seq (AR sampling).
  /// Runs positions 0...n: with the start-of-sequence shift, position n's input is token n-1.
  public func nextLogits(prefix: UnsafePointer<Int32>, batch B: Int, length n: Int) -> [Float] {
    guard config.objective == .ar else { fatalError("next-token logits need an AR model") }
    guard n >= 0 && n < config.seq else { fatalError("prefix length \(n) outside 0..<\(config.seq)") }
    let C = config.embd, V = config.vocab, T = n + 1, N = B * T
    var padded = [Int32](repeating: 0, count: N)
    for b in 0..<B {
      for t in 0..<n { padded[b * T + t] = prefix[b * n + t] }
    }
    let a = activations(B, T, recompute: nil)
    let residual = padded.withUnsafeBufferPointer { tk in
      blocks(a, tokens: tk.baseAddress!, mask: nil, B: B, T: T, layers: config.layers)
    }
    StepProfile.measure("rmsnorm_forward") {
      RMSNorm.forward(out: a.lnf, rstd: a.lnfRstd, inp: residual, g: params + layout.lnf, N: N, C: C)
    }
    var out = [Float](repeating: 0, count: B * V)
    out.withUnsafeMutableBufferPointer { o in
      for b in 0..<B {
        Head.forward(
          logits: o.baseAddress! + b * V, x: a.lnf + (b * T + n) * C,
          w: params + layout.wtet, N: 1, C: C, V: V)
      }
    }
    return out
  }

  /// Features (B, C) at layer l in 0...layers: the mean over positions of norm(h_l), where
  /// norm is block l's ln_1 for l < layers (the paper's n^l) and ln_f for l = layers.
  public func features(
    tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>? = nil, batch B: Int, layer: Int
  ) -> [Float] {
    guard layer >= 0 && layer <= config.layers else { fatalError("layer \(layer) outside 0...\(config.layers)") }
    return allFeatures(tokens: tokens, mask: mask, batch: B, through: layer)[layer]
  }

  /// Features (B, C) at every layer 0...deepest (default: all layers) from forward passes only:
  /// entry l is the mean over positions of block l's ln_1 output (l < layers) or of ln_f
  /// (l = layers), as `features`. Blocks past `deepest` are never run: a probe of the middle
  /// layers costs only the blocks below them.
  ///
  /// Every image has a pass of its own, unsplit (sgemm with T rows), and the threads take
  /// contiguous runs of images. OpenBLAS's bytes for a row can depend on the call's shape, so
  /// this is what makes an image's features the same bytes whatever the batch, the thread
  /// count or the kernel family's blocking: `igpt probe run` (batches of 64) and a cluster job
  /// (microbatches of 32 on workers of any thread count) issue the same calls per image.
  /// `imageGroups` false runs the whole batch as one pass with every kernel split across the
  /// threads instead (bench --features-split; other shapes, so not the same bytes).
  public func allFeatures(
    tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>? = nil, batch B: Int, through deepest: Int? = nil,
    imageGroups: Bool = true
  ) -> [[Float]] {
    let L = config.layers, m = deepest ?? L, T = config.seq, C = config.embd
    guard m >= 0 && m <= L else { fatalError("layer \(m) outside 0...\(L)") }
    if !imageGroups {
      return features(activations(B, T, recompute: nil), tokens: tokens, mask: mask, B: B, through: m)
    }
    let groups = max(1, Parallel.isSerial ? 1 : min(Parallel.threads, B))
    let acts = imageActivations(groups, T: T)
    // (m + 1, B, C), layer-major; each thread writes the rows of its own images
    let flat = UnsafeMutablePointer<Float>.allocate(capacity: (m + 1) * B * C)
    defer { flat.deallocate() }
    Parallel.forChunks(groups) { _, chunk in
      for g in chunk {
        Parallel.serially {
          for b in Parallel.chunkRange(g, of: groups, count: B) {
            let f = features(acts[g], tokens: tokens + b * T, mask: mask.map { $0 + b * T }, B: 1, through: m)
            for l in 0...m { (flat + (l * B + b) * C).update(from: f[l], count: C) }
          }
        }
      }
    }
    return (0...m).map { l in Array(UnsafeBufferPointer(start: flat + l * B * C, count: B * C)) }
  }

  /// One forward-only, one-image activation slab per thread, kept while the count stays the same.
  private func imageActivations(_ count: Int, T: Int) -> [Activations] {
    if groupActs.count != count || groupActs.first?.T != T || groupActs.first?.B != 1 {
      groupActs = []  // free the old slabs first
      groupActs = (0..<count).map { _ in Activations(config: config, B: 1, T: T, threads: 1, recompute: true) }
    }
    return groupActs
  }

  /// Features of layers 0...m for images (B, T) in activations `a` (one slot).
  private func features(
    _ a: Activations, tokens: UnsafePointer<Int32>, mask: UnsafePointer<UInt8>?, B: Int, through m: Int
  ) -> [[Float]] {
    let C = config.embd, T = config.seq, N = B * T, L = config.layers
    var out = [[Float]](repeating: [Float](repeating: 0, count: B * C), count: m + 1)
    func pool(_ x: UnsafePointer<Float>, _ l: Int) {
      StepProfile.measure("feature_pool") {
        out[l].withUnsafeMutableBufferPointer { Self.meanOverPositions(x, into: $0.baseAddress!, B: B, T: T, C: C) }
      }
    }
    // Each layer's ln_1 output is pooled right after its block, so one activation slot serves.
    if m < L {
      // blocks 0..<m in full, block m only through its ln_1 (layer m's norm)
      _ = blocks(a, tokens: tokens, mask: mask, B: B, T: T, layers: m + 1, stopAtNorm: true) { l, x in pool(x.ln1, l) }
      pool(a.layer(m, C: C, H: config.heads).ln1, m)
      return out
    }
    let residual = blocks(a, tokens: tokens, mask: mask, B: B, T: T, layers: L) { l, x in pool(x.ln1, l) }
    StepProfile.measure("rmsnorm_forward") {
      RMSNorm.forward(out: a.lnf, rstd: a.lnfRstd, inp: residual, g: params + layout.lnf, N: N, C: C)
    }
    pool(a.lnf, L)
    return out
  }

  /// dst (B, C) = mean over positions of x (B, T, C); dst starts zeroed. Sums 16 channels at a
  /// time, each lane adding in position order (so it equals the scalar loop of `features`).
  private static func meanOverPositions(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int) {
    let vec = C / 16 * 16
    for b in 0..<B {
      let d = dst + b * C
      for t in 0..<T {
        let row = x + (b * T + t) * C
        var c = 0
        while c < vec {
          let acc = UnsafeRawPointer(d + c).loadUnaligned(as: SIMD16<Float>.self)
            + UnsafeRawPointer(row + c).loadUnaligned(as: SIMD16<Float>.self)
          UnsafeMutableRawPointer(d + c).storeBytes(of: acc, as: SIMD16<Float>.self)
          c += 16
        }
        while c < C {
          d[c] += row[c]
          c += 1
        }
      }
      for c in 0..<C { d[c] /= Float(T) }
    }
  }
}
