import Testing
@testable import IGPTKernels

/// Each kernel's backward against central differences of its forward (scalar = sum(out * dout)).
@Suite struct KernelGradientTests {
  init() {
    Parallel.threads = 2
    BLAS.setThreads(1)
  }

  @Test func rmsnorm() {
    let N = 6, C = 20
    var r = Rand(1)
    var x = r.normal(N * C), g = r.normal(C, std: 0.3).map { $0 + 1 }
    let dout = r.normal(N * C)
    func forward(_ x: [Float], _ g: [Float]) -> [Float] {
      var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
      RMSNorm.forward(out: &out, rstd: &rstd, inp: x, g: g, N: N, C: C)
      return out
    }
    var rstd = [Float](repeating: 0, count: N), out = [Float](repeating: 0, count: N * C)
    RMSNorm.forward(out: &out, rstd: &rstd, inp: x, g: g, N: N, C: C)
    var dx = [Float](repeating: 0, count: N * C), dg = [Float](repeating: 0, count: C)
    var scratch = [Float](repeating: 0, count: 2 * C)
    RMSNorm.backward(dinp: &dx, dg: &dg, dout: dout, inp: x, g: g, rstd: rstd, scratch: &scratch, N: N, C: C)
    let gg = g
    #expect(worstGradientError(x: &x, analytic: dx) { weightedSum(forward($0, gg), dout) } < 2e-2)
    let xx = x
    #expect(worstGradientError(x: &g, analytic: dg) { weightedSum(forward(xx, $0), dout) } < 2e-2)
  }

  @Test func matmul() {
    let N = 33, C = 24, OC = 80
    var r = Rand(2)
    var x = r.normal(N * C), w = r.normal(C * OC, std: 0.2)
    let dout = r.normal(N * OC)
    func forward(_ x: [Float], _ w: [Float]) -> [Float] {
      var out = [Float](repeating: 0, count: N * OC)
      Matmul.forward(out: &out, inp: x, w: w, N: N, C: C, OC: OC)
      return out
    }
    // forward against a naive triple loop
    let out = forward(x, w)
    var worstForward: Float = 0
    for n in 0..<N {
      for o in 0..<OC {
        var s: Float = 0
        for c in 0..<C { s += x[n * C + c] * w[c * OC + o] }
        worstForward = max(worstForward, abs(s - out[n * OC + o]))
      }
    }
    #expect(worstForward < 1e-4)
    var dx = [Float](repeating: 7, count: N * C)  // overwritten
    var dw = [Float](repeating: 0, count: C * OC)
    Matmul.backward(dinp: &dx, dw: &dw, dout: dout, inp: x, w: w, N: N, C: C, OC: OC)
    let ww = w
    #expect(worstGradientError(x: &x, analytic: dx) { weightedSum(forward($0, ww), dout) } < 2e-2)
    let xx = x
    #expect(worstGradientError(x: &w, analytic: dw) { weightedSum(forward(xx, $0), dout) } < 2e-2)
    // dw accumulates: a second backward doubles it
    var dw2 = dw
    Matmul.backward(dinp: &dx, dw: &dw2, dout: dout, inp: x, w: w, N: N, C: C, OC: OC)
    #expect(zip(dw, dw2).allSatisfy { abs(2 * $0 - $1) <= 1e-5 * max(1, abs($1)) })
  }

  @Test func head() {
    let N = 10, C = 16, V = 7
    var r = Rand(3)
    var x = r.normal(N * C), w = r.normal(V * C, std: 0.3)
    let dout = r.normal(N * V)
    func forward(_ x: [Float], _ w: [Float]) -> [Float] {
      var out = [Float](repeating: 0, count: N * V)
      Head.forward(logits: &out, x: x, w: w, N: N, C: C, V: V)
      return out
    }
    var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: V * C)
    Head.backward(dx: &dx, dw: &dw, dlogits: dout, x: x, w: w, N: N, C: C, V: V)
    let ww = w
    #expect(worstGradientError(x: &x, analytic: dx) { weightedSum(forward($0, ww), dout) } < 2e-2)
    let xx = x
    #expect(worstGradientError(x: &w, analytic: dw) { weightedSum(forward(xx, $0), dout) } < 2e-2)
  }

  @Test func gelu2() {
    let N = 100
    var r = Rand(4)
    var x = r.normal(N, std: 2)
    let dout = r.normal(N)
    func forward(_ x: [Float]) -> [Float] {
      var out = [Float](repeating: 0, count: N), sig = [Float](repeating: 0, count: N)
      GELU2.forward(out: &out, sig: &sig, inp: x, N: N)
      return out
    }
    let out = forward(x)
    for i in 0..<N {
      let exact = Double(x[i]) / (1 + Foundation_exp(-1.702 * Double(x[i])))
      #expect(abs(Double(out[i]) - exact) < 1e-5 * max(1, abs(exact)))
    }
    var dx = [Float](repeating: 0, count: N), sig = [Float](repeating: 0, count: N)
    var y = [Float](repeating: 0, count: N)
    GELU2.forward(out: &y, sig: &sig, inp: x, N: N)
    GELU2.backward(dinp: &dx, dout: dout, out: y, sig: sig, N: N)
    #expect(worstGradientError(x: &x, analytic: dx, eps: 1e-3) { weightedSum(forward($0), dout) } < 2e-2)
  }

  @Test func crossEntropy() {
    let N = 5, V = 9
    var r = Rand(5)
    var logits = r.normal(N * V, std: 2)
    let targets: [Int32] = [0, 8, 3, 3, 5]
    let weights: [Float] = [0.2, 0.1, 0, 0.4, 0.3]
    func loss(_ l: [Float]) -> Double {
      var probs = l, losses = [Float](repeating: 0, count: N)
      CrossEntropy.forward(losses: &losses, logits: &probs, targets: targets, N: N, V: V)
      return CrossEntropy.weightedSum(losses: losses, weights: weights, N: N)
    }
    // against log-sum-exp in Double
    var expected = 0.0
    for n in 0..<N {
      let row = logits[(n * V)..<(n * V + V)].map(Double.init)
      let m = row.max()!
      let lse = m + Foundation_log(row.map { Foundation_exp($0 - m) }.reduce(0, +))
      expected += Double(weights[n]) * (lse - row[Int(targets[n])])
    }
    #expect(abs(loss(logits) - expected) < 1e-5)
    var probs = logits, losses = [Float](repeating: 0, count: N)
    CrossEntropy.forward(losses: &losses, logits: &probs, targets: targets, N: N, V: V)
    var d = [Float](repeating: 0, count: N * V)
    CrossEntropy.backward(dlogits: &d, probs: probs, targets: targets, weights: weights, N: N, V: V)
    #expect(worstGradientError(x: &logits, analytic: d, floor: 1e-3) { loss($0) } < 2e-2)
  }

  @Test(arguments: [true, false]) func encoder(bert: Bool) {
    let B = 2, T = 5, C = 8, V = 4
    var r = Rand(6)
    var wte = r.normal(V * C), sos = r.normal(C), wpe = r.normal(T * C)
    let tokens: [Int32] = [0, 3, 3, 1, 2, 2, 2, 0, 1, 3]
    let mask: [UInt8] = [0, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    let dout = r.normal(B * T * C)
    func forward(_ wte: [Float], _ sos: [Float], _ wpe: [Float]) -> [Float] {
      var out = [Float](repeating: 0, count: B * T * C)
      mask.withUnsafeBufferPointer { m in
        Encoder.forward(out: &out, tokens: tokens, wte: wte, sos: sos, wpe: wpe,
                        mask: bert ? m.baseAddress : nil, B: B, T: T, C: C)
      }
      return out
    }
    // the shift: AR position 0 is sos + wpe[0], position 1 is wte[x0] + wpe[1]
    let out = forward(wte, sos, wpe)
    if bert {
      #expect(out[C] == wpe[C])  // masked: zero embedding, position added
      #expect(out[0] == wte[0] + wpe[0])
    } else {
      #expect(out[0] == sos[0] + wpe[0])
      #expect(out[C] == wte[Int(tokens[0]) * C] + wpe[C])
    }
    var dwte = [Float](repeating: 0, count: V * C), dsos = [Float](repeating: 0, count: C)
    var dwpe = [Float](repeating: 0, count: T * C)
    mask.withUnsafeBufferPointer { m in
      Encoder.backward(dwte: &dwte, dsos: &dsos, dwpe: &dwpe, dout: dout, tokens: tokens,
                       mask: bert ? m.baseAddress : nil, B: B, T: T, C: C)
    }
    let (s0, p0, e0) = (sos, wpe, wte)
    #expect(worstGradientError(x: &wte, analytic: dwte) { weightedSum(forward($0, s0, p0), dout) } < 2e-2)
    #expect(worstGradientError(x: &sos, analytic: dsos) { weightedSum(forward(e0, $0, p0), dout) } < 2e-2)
    #expect(worstGradientError(x: &wpe, analytic: dwpe) { weightedSum(forward(e0, s0, $0), dout) } < 2e-2)
    if bert { #expect(dsos.allSatisfy { $0 == 0 }) }
  }
}

import Foundation
func Foundation_exp(_ x: Double) -> Double { Foundation.exp(x) }
func Foundation_log(_ x: Double) -> Double { Foundation.log(x) }
