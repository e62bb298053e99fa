import Foundation
import Testing
@testable import IGPTKernels

/// Attention against a naive reference and against central differences, with and without the
/// causal mask, at lengths that use one and several causal row blocks.
@Suite struct AttentionTests {
  init() {
    Parallel.threads = 2
    BLAS.setThreads(1)
  }

  /// Naive attention in Double: out (B, T, C) from qkv (B, T, 3C).
  func reference(_ qkv: [Float], causal: Bool, B: Int, T: Int, C: Int, H: Int) -> [Double] {
    let D = C / H
    var out = [Double](repeating: 0, count: B * T * C)
    for b in 0..<B {
      for h in 0..<H {
        for i in 0..<T {
          var scores = [Double](repeating: -.infinity, count: T)
          for j in 0..<T where !causal || j <= i {
            var s = 0.0
            for d in 0..<D {
              s += Double(qkv[(b * T + i) * 3 * C + h * D + d]) * Double(qkv[(b * T + j) * 3 * C + C + h * D + d])
            }
            scores[j] = s / Double(D).squareRoot()
          }
          let m = scores.max()!
          let e = scores.map { exp($0 - m) }
          let z = e.reduce(0, +)
          for d in 0..<D {
            var acc = 0.0
            for j in 0..<T { acc += e[j] / z * Double(qkv[(b * T + j) * 3 * C + 2 * C + h * D + d]) }
            out[(b * T + i) * C + h * D + d] = acc
          }
        }
      }
    }
    return out
  }

  func run(_ qkv: [Float], causal: Bool, B: Int, T: Int, C: Int, H: Int) -> [Float] {
    var out = [Float](repeating: 0, count: B * T * C)
    var lse = [Float](repeating: 0, count: B * H * T)
    var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, D: C / H, threads: 2))
    Attention.forward(out: &out, lse: &lse, qkv: qkv, scratch: &scratch, causal: causal,
                      B: B, T: T, C: C, H: H)
    return out
  }

  /// Head widths 8 (small sgemms), 32 and 48 (tiles: two-vector and one-vector columns); lengths
  /// with a partial last tile of rows and with several causal row blocks.
  @Test(arguments: [
    (true, 7, 16), (false, 7, 16), (true, 100, 16), (true, 150, 16), (false, 100, 16),
    (true, 7, 64), (true, 29, 64), (false, 29, 64), (true, 150, 64), (true, 37, 96), (false, 37, 96),
  ])
  func forwardMatchesReference(causal: Bool, T: Int, C: Int) {
    let B = 2, H = 2
    #expect(Attention.usesTiles(D: C / H) == (C / H % 16 == 0))
    var r = Rand(11)
    let qkv = r.normal(B * T * 3 * C)
    let out = run(qkv, causal: causal, B: B, T: T, C: C, H: H)
    let ref = reference(qkv, causal: causal, B: B, T: T, C: C, H: H)
    let worst = zip(out, ref).map { abs(Double($0) - $1) }.max()!
    #expect(worst < 1e-5)
  }

  @Test(arguments: [
    (true, 9, 8), (false, 9, 8), (true, 100, 8), (false, 60, 8),
    (true, 9, 32), (false, 9, 32), (true, 45, 32), (false, 45, 32), (true, 21, 96),
  ])
  func backwardMatchesFiniteDifferences(causal: Bool, T: Int, C: Int) {
    let B = 2, H = 2
    var r = Rand(12)
    var qkv = r.normal(B * T * 3 * C)
    let dout = r.normal(B * T * C)
    var out = [Float](repeating: 0, count: B * T * C)
    var lse = [Float](repeating: 0, count: B * H * T)
    var scratch = [Float](repeating: 0, count: Attention.scratchCount(T: T, D: C / H, threads: 2))
    Attention.forward(out: &out, lse: &lse, qkv: qkv, scratch: &scratch, causal: causal,
                      B: B, T: T, C: C, H: H)
    var dqkv = [Float](repeating: 5, count: B * T * 3 * C)  // overwritten
    Attention.backward(dqkv: &dqkv, dout: dout, out: out, qkv: qkv, lse: lse, scratch: &scratch,
                       causal: causal, B: B, T: T, C: C, H: H)
    let err = worstGradientError(x: &qkv, analytic: dqkv, samples: 60) {
      weightedSum(run($0, causal: causal, B: B, T: T, C: C, H: H), dout)
    }
    #expect(err < 2e-2)
    if causal {
      // Only the last query attends to the last position: dV[T-1] = P[T-1, T-1] * dO[T-1],
      // with P[T-1, T-1] = exp(s - lse) for the last query's score on its own key.
      let D = C / H
      let b = B - 1, i = T - 1
      for h in 0..<H {
        var s: Float = 0
        for d in 0..<D {
          s += qkv[(b * T + i) * 3 * C + h * D + d] * qkv[(b * T + i) * 3 * C + C + h * D + d]
        }
        let p = exp(s / Float(D).squareRoot() - lse[(b * H + h) * T + i])
        for d in 0..<D {
          let dv = dqkv[(b * T + i) * 3 * C + 2 * C + h * D + d]
          let want = p * dout[(b * T + i) * C + h * D + d]
          #expect(abs(dv - want) < 1e-5)
        }
      }
    }
  }

  /// The work `igpt bench --profile` counts: every product in full without the mask (2 T^2 D
  /// multiply-adds forward, 5 backward, per head), about half of that with it, both paths.
  @Test(arguments: [64, 24])
  func workCountsTheProductsTheKernelsDo(D: Int) {
    let B = 2, H = 3, T = 1024, C = D * H
    let full = Attention.work(B: B, T: T, C: C, H: H, causal: false)
    let square = Double(B * H * T * T * D)
    #expect(full.forward == 2 * square && full.backward == 5 * square)
    let causal = Attention.work(B: B, T: T, C: C, H: H, causal: true)
    // the kernels compute a little past the diagonal: at most 1/8 more than half at this size
    #expect(causal.forward > square && causal.forward < 2 * square * 0.5 * 1.13)
    #expect(causal.backward > 2.5 * square && causal.backward < 5 * square * 0.5 * 1.13)
  }
}
