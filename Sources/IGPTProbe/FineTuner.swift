import Foundation
import IGPTData
import IGPTKernels
import IGPTModel

/// Fine-tuning (the paper's recipe): a zero-initialised linear classifier on
/// mean(norm_f(h_L)) trained jointly with the model on L_GEN + L_CLF (or L_CLF alone), with Adam
/// at a constant (or cosine-decayed) learning rate, early-stopped on val accuracy. The head can
/// start from a linear probe on the same features instead of zero (`startHead`).
public final class FineTuner {
  public struct Options: Sendable {
    public var learningRate = 3e-4
    /// The classifier's own rate (nil: `learningRate`). It starts at zero and has to grow to
    /// logits of order 1, which at the body's small rate takes most of an epoch.
    public var headLearningRate: Double?
    public var batch = 32
    public var steps = 1000
    /// Evaluate on val every this many steps; stop after `patience` evaluations without gain.
    public var evalEvery = 100
    public var patience = 3
    /// false: L_CLF only.
    public var generative = true
    /// Cosine decay of both rates from their value to 0 over `steps` (false: constant).
    public var cosine = false
    public var seed: UInt64 = 0
    public init() {}
  }

  public let model: IGPT
  public let classes: Int
  /// (C, K) and (K): the classifier head.
  public var wclf: [Float]
  public var bclf: [Float]
  /// Whether `startHead` gave the head its values.
  public private(set) var headFromProbe = false
  let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
  var mc: [Float], vc: [Float]
  var t = 0

  public init(model: IGPT, classes: Int) {
    self.model = model
    self.classes = classes
    let C = model.config.embd
    wclf = [Float](repeating: 0, count: C * classes)
    bclf = [Float](repeating: 0, count: classes)
    m = .allocate(capacity: model.parameterCount)
    v = .allocate(capacity: model.parameterCount)
    m.initialize(repeating: 0, count: model.parameterCount)
    v.initialize(repeating: 0, count: model.parameterCount)
    mc = [Float](repeating: 0, count: C * classes + classes)
    vc = mc
  }

  deinit {
    m.deallocate()
    v.deallocate()
  }

  /// Starts the head from a fitted classifier on the same features (a linear probe on
  /// mean(norm_f(h_L)), `LinearProbe.Fit`'s weights): fine-tuning then begins at the probe's
  /// accuracy instead of a zero head that has to grow first.
  public func startHead(weights: [Float], bias: [Float]) {
    precondition(weights.count == wclf.count && bias.count == bclf.count,
                 "head of \(weights.count)+\(bias.count) values for \(wclf.count)+\(bclf.count)")
    wclf = weights
    bclf = bias
    headFromProbe = true
  }

  /// The rate multiplier at `step` (0-based) of `steps`: 1, or the cosine from 1 to 0.
  public static func rateScale(step: Int, steps: Int, cosine: Bool) -> Double {
    cosine ? 0.5 * (1 + Foundation.cos(Double.pi * Double(step) / Double(max(steps, 1)))) : 1
  }

  /// Classifier loss and its gradients for pooled features (B, C): returns (loss, dWclf+dbclf, dpooled).
  func classify(_ pooled: [Float], labels: [Int]) -> (loss: Double, dparams: [Float], dpooled: [Float], correct: Int) {
    let B = labels.count, C = model.config.embd, K = classes
    var loss = 0.0, correct = 0
    var dparams = [Float](repeating: 0, count: C * K + K)
    var dpooled = [Float](repeating: 0, count: B * C)
    for b in 0..<B {
      var z = bclf
      for c in 0..<C {
        let x = pooled[b * C + c]
        for k in 0..<K { z[k] += x * wclf[c * K + k] }
      }
      let mx = z.max()!
      let e = z.map { Foundation.exp(Double($0 - mx)) }
      let s = e.reduce(0, +)
      loss += Foundation.log(s) - Double(z[labels[b]] - mx)
      if z.firstIndex(of: mx) == labels[b] { correct += 1 }
      for k in 0..<K {
        let d = Float((e[k] / s - (k == labels[b] ? 1 : 0)) / Double(B))
        dparams[C * K + k] += d
        for c in 0..<C {
          dparams[c * K + k] += pooled[b * C + c] * d
          dpooled[b * C + c] += wclf[c * K + k] * d
        }
      }
    }
    return (loss / Double(B), dparams, dpooled, correct)
  }

  /// One fine-tuning step on a batch: fills the model's gradients (generative loss scaled by
  /// `generativeWeight`, plus the classifier's through the pooled final norm) and returns both
  /// losses and the classifier gradient. Does not update anything.
  public func gradients(tokens: [Int32], mask: [UInt8], labels: [Int], generativeWeight: Float)
    -> (generative: Double, classifier: Double, classifierGradient: [Float])
  {
    let B = labels.count, T = model.config.seq, C = model.config.embd
    var clf = (loss: 0.0, dparams: [Float](), dpooled: [Float](), correct: 0)
    model.zeroGradients()
    let gen = tokens.withUnsafeBufferPointer { tk in
      mask.withUnsafeBufferPointer { mk in
        model.forwardBackward(tokens: tk.baseAddress!, mask: mask.isEmpty ? nil : mk.baseAddress, batch: B,
                              lossScale: generativeWeight) { lnf, dlnf in
          var pooled = [Float](repeating: 0, count: B * C)
          for b in 0..<B {
            for t in 0..<T { for c in 0..<C { pooled[b * C + c] += lnf[(b * T + t) * C + c] } }
            for c in 0..<C { pooled[b * C + c] /= Float(T) }
          }
          clf = self.classify(pooled, labels: labels)
          for b in 0..<B {
            for t in 0..<T { for c in 0..<C { dlnf[(b * T + t) * C + c] += clf.dpooled[b * C + c] / Float(T) } }
          }
        }
      }
    }
    return (gen, clf.loss, clf.dparams)
  }

  /// Adam on the model and the classifier (no weight decay, constant learning rate).
  func update(classifierGradient g: [Float], learningRate: Float, headLearningRate: Float) {
    t += 1
    AdamW.update(params: model.params, grads: model.grads, m: m, v: v, count: model.parameterCount,
                 step: .init(learningRate: learningRate, t: t))
    var p = wclf + bclf
    let count = p.count
    p.withUnsafeMutableBufferPointer { pp in
      g.withUnsafeBufferPointer { gg in
        mc.withUnsafeMutableBufferPointer { mm in
          vc.withUnsafeMutableBufferPointer { vv in
            AdamW.update(params: pp.baseAddress!, grads: gg.baseAddress!, m: mm.baseAddress!, v: vv.baseAddress!, count: count,
                         step: .init(learningRate: headLearningRate, t: t))
          }
        }
      }
    }
    wclf = Array(p[0..<wclf.count])
    bclf = Array(p[wclf.count...])
  }

  /// The tokens (B, T) and labels (B) of images `indices` of a split.
  func batch(_ split: TokenSplit, indices idx: [Int]) throws -> (tokens: [Int32], labels: [Int]) {
    let T = split.sequenceLength
    var tokens = [Int32](repeating: 0, count: idx.count * T)
    try tokens.withUnsafeMutableBufferPointer { t in
      for (i, j) in idx.enumerated() { try split.copyTokens(j, into: t.baseAddress! + i * T) }
    }
    return (tokens, try idx.map { Int(try split.label($0)) })
  }

  /// One step of the schedule on a batch: gradients, then Adam at both rates scaled for `step`
  /// (0-based) of `options.steps`. Returns the batch's two losses.
  func trainStep(tokens: [Int32], labels: [Int], step: Int, options o: Options, rng: inout SeededRandom)
    -> (generative: Double, classifier: Double)
  {
    var mask: [UInt8] = []
    if model.config.objective == .bert { mask = BERTMask.draw(B: labels.count, T: model.config.seq, rng: &rng) }
    let r = gradients(tokens: tokens, mask: mask, labels: labels, generativeWeight: o.generative ? 1 : 0)
    let scale = Self.rateScale(step: step, steps: o.steps, cosine: o.cosine)
    update(classifierGradient: r.classifierGradient, learningRate: Float(o.learningRate * scale),
           headLearningRate: Float((o.headLearningRate ?? o.learningRate) * scale))
    return (r.generative, r.classifier)
  }

  /// Accuracy of the classifier on images of a split (features at the final norm).
  public func accuracy(_ split: TokenSplit, indices: [Int], batch size: Int = 64) throws -> Double {
    let T = split.sequenceLength, L = model.config.layers
    var correct = 0
    for start in stride(from: 0, to: indices.count, by: size) {
      let (tokens, labels) = try batch(split, indices: Array(indices[start..<min(indices.count, start + size)]))
      var mask: [UInt8] = []
      if model.config.objective == .bert {
        var rng = SeededRandom(seed: UInt64(start) &+ 77)
        mask = BERTMask.draw(B: labels.count, T: T, rng: &rng)
      }
      let pooled = tokens.withUnsafeBufferPointer { tk in
        mask.withUnsafeBufferPointer { mk in
          model.allFeatures(tokens: tk.baseAddress!, mask: mask.isEmpty ? nil : mk.baseAddress, batch: labels.count)[L]
        }
      }
      correct += classify(pooled, labels: labels).correct
    }
    return Double(correct) / Double(max(1, indices.count))
  }

  public struct Report: Codable, Sendable {
    public var steps: Int
    public var bestStep: Int
    public var valAccuracy: Double
    public var testAccuracy: Double
    public var trainAccuracy: Double
    /// Rows of [step, L_gen, L_clf, val accuracy], one per evaluation; the losses are the mean
    /// over the training batches since the previous evaluation.
    public var history: [[Double]]
    public var learningRate: Double?
    public var headLearningRate: Double?
    public var generative: Bool?
    /// Whether the rates decayed on a cosine, and whether the head started from a linear probe.
    public var cosine: Bool?
    public var headFromProbe: Bool?
  }

  /// Fine-tunes on train, early-stops on val, restores the best state and reports accuracies;
  /// `progress` hears (steps done, most steps) after every step.
  public func run(train: TokenSplit, trainIndices: [Int], val: TokenSplit, valIndices: [Int], test: TokenSplit, testIndices: [Int],
                  options o: Options, log: (String) -> Void, progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
    var rng = SeededRandom(seed: o.seed)
    var order = trainIndices
    var position = order.count
    var best = (acc: try accuracy(val, indices: valIndices), step: 0,
                params: Array(UnsafeBufferPointer(start: model.params, count: model.parameterCount)), w: wclf, b: bclf)
    let started = headFromProbe ? "head from a linear probe" : "zero classifier"
    log(String(format: "fine-tune: step 0 val accuracy %.4f (%@)", best.acc, started as NSString))
    var history: [[Double]] = []
    var sinceBest = 0
    var step = 0
    // the batches' mean losses and the time since the last evaluation
    var interval = (generative: 0.0, classifier: 0.0, steps: 0, images: 0, start: Date())
    while step < o.steps {
      if position + o.batch > order.count {
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        position = 0
      }
      let idx = Array(order[position..<min(order.count, position + o.batch)])
      position += idx.count
      let (tokens, labels) = try batch(train, indices: idx)
      let r = trainStep(tokens: tokens, labels: labels, step: step, options: o, rng: &rng)
      interval.generative += r.generative
      interval.classifier += r.classifier
      interval.steps += 1
      interval.images += labels.count
      step += 1
      progress(step, o.steps)
      if step % o.evalEvery == 0 || step == o.steps {
        let seconds = Date().timeIntervalSince(interval.start)
        let gen = interval.generative / Double(interval.steps), clf = interval.classifier / Double(interval.steps)
        let acc = try accuracy(val, indices: valIndices)
        history.append([Double(step), gen, clf, acc])
        log(String(format: "fine-tune: step %d  L_gen %.4f  L_clf %.4f  val accuracy %.4f  (%.1f images/s)", step, gen, clf, acc,
                   Double(interval.images) / max(seconds, 1e-9)))
        interval = (0, 0, 0, 0, Date())
        if acc > best.acc {
          best = (acc, step, Array(UnsafeBufferPointer(start: model.params, count: model.parameterCount)), wclf, bclf)
          sinceBest = 0
        } else {
          sinceBest += 1
          if sinceBest >= o.patience {
            log("fine-tune: no val gain in \(o.patience) evaluations: stopping early")
            break
          }
        }
      }
    }
    best.params.withUnsafeBufferPointer { model.params.update(from: $0.baseAddress!, count: model.parameterCount) }
    wclf = best.w
    bclf = best.b
    return Report(steps: step, bestStep: best.step, valAccuracy: best.acc,
                  testAccuracy: try accuracy(test, indices: testIndices),
                  trainAccuracy: try accuracy(train, indices: Array(trainIndices.prefix(2000))), history: history,
                  learningRate: o.learningRate, headLearningRate: o.headLearningRate ?? o.learningRate, generative: o.generative,
                  cosine: o.cosine, headFromProbe: headFromProbe)
  }
}
