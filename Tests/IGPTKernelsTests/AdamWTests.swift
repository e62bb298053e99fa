import Testing
@testable import IGPTKernels

@Suite struct AdamWTests {
  /// Two steps against the textbook update computed in Double.
  @Test func matchesTheTextbookUpdate() {
    Parallel.threads = 2
    var p: [Float] = [0.5, -1, 2, 0]
    var m = [Float](repeating: 0, count: 4), v = [Float](repeating: 0, count: 4)
    let grads: [[Float]] = [[0.1, -0.2, 0.3, 0], [0.05, 0.1, -0.3, 1]]
    var pd = p.map(Double.init), md = [Double](repeating: 0, count: 4), vd = md
    for (t, g) in grads.enumerated() {
      let s = AdamW.Step(learningRate: 0.01, t: t + 1, weightDecay: 0.1)
      AdamW.update(params: &p, grads: g, m: &m, v: &v, count: 4, step: s)
      for i in 0..<4 {
        md[i] = 0.9 * md[i] + 0.1 * Double(g[i])
        vd[i] = 0.95 * vd[i] + 0.05 * Double(g[i]) * Double(g[i])
        let mh = md[i] / (1 - pow(0.9, Double(t + 1))), vh = vd[i] / (1 - pow(0.95, Double(t + 1)))
        pd[i] -= 0.01 * (mh / (vh.squareRoot() + 1e-8) + 0.1 * pd[i])
      }
    }
    for i in 0..<4 { #expect(abs(Double(p[i]) - pd[i]) < 1e-6) }
  }
}

import Foundation
