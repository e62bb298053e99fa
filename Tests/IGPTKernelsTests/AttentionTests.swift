import Foundation
import Testing
@testable import IGPTKernels

/// Attention against a naive Double reference and against central differences, with and without
/// the causal mask, at lengths that fill one block, several, and end in partial ones.
@Suite struct AttentionTests {
  init() {
    Parallel.threads = 2
    BLAS.setThreads(1)
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
    let ref = AttentionReference(B: B, T: T, C: C, H: H, causal: causal).forward(qkv).out
    let worst = zip(out, ref).map { abs(Double($0) - $1) }.max()!
    #expect(worst < 1e-5)
  }

  @Test(arguments: [
    (true, 9, 8), (false, 9, 8), (true, 100, 8), (false, 60, 8),
    (true, 9, 32), (false, 9, 32), (true, 45, 32), (false, 45, 32), (true, 21, 96),
    (true, 196, 64), (false, 196, 64),
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

  /// The blocked kernels (64 x 64 blocks, spans of 256 keys forward) against the Double
  /// reference at every element of out, lse and dqkv: the bench length (196: a partial last
  /// block of 4 rows and a 16-wide last key block), a 32x32 image's (1,024: whole blocks) and a
  /// 48x48 one's (2,304: 36 blocks, a partial span), AR and BERT, head widths 16, 32, 64, 96.
  @Test(arguments: [196, 1024, 2304], [16, 32, 64, 96])
  func blocksMatchTheDoubleReference(T: Int, D: Int) {
    for causal in [true, false] {
      let B = 1, H = T > 1024 ? 1 : 2, C = D * H
      var r = Rand(UInt64(T * 100 + D))
      let qkv = r.normal(B * T * 3 * C), dout = r.normal(B * T * C)
      var out = [Float](repeating: 0, count: B * T * C), lse = [Float](repeating: 0, count: B * H * T)
      var scratch = [Float](repeating: .nan, count: Attention.scratchCount(T: T, D: D, threads: 2))
      Attention.forward(out: &out, lse: &lse, qkv: qkv, scratch: &scratch, causal: causal, B: B, T: T, C: C, H: H)
      var dqkv = [Float](repeating: .nan, count: B * T * 3 * C)
      Attention.backward(dqkv: &dqkv, dout: dout, out: out, qkv: qkv, lse: lse, scratch: &scratch,
                         causal: causal, B: B, T: T, C: C, H: H)
      let reference = AttentionReference(B: B, T: T, C: C, H: H, causal: causal)
      let (refOut, refLSE) = reference.forward(qkv)
      let refGrad = reference.backward(qkv, dout: dout)
      let outError = zip(out, refOut).map { abs(Double($0) - $1) }.max()!
      let lseError = zip(lse, refLSE).map { abs(Double($0) - $1) }.max()!
      let gradScale = refGrad.map(abs).max()!
      let gradError = zip(dqkv, refGrad).map { abs(Double($0) - $1) }.max()! / gradScale
      #expect(outError < 1e-5, "T \(T) D \(D) causal \(causal): out off by \(outError)")
      #expect(lseError < 2e-5, "T \(T) D \(D) causal \(causal): lse off by \(lseError)")
      #expect(gradError < 1e-5, "T \(T) D \(D) causal \(causal): dqkv off by \(gradError) of its largest entry")
    }
  }

  /// The Double reference's backward is the derivative of its forward (central differences in
  /// Double, so the check is tight), with the mask and without.
  @Test(arguments: [true, false])
  func referenceBackwardIsCentralDifferences(causal: Bool) {
    let B = 2, T = 70, H = 2, C = 32
    var r = Rand(13)
    let qkv = r.normal(B * T * 3 * C), dout = r.normal(B * T * C)
    let reference = AttentionReference(B: B, T: T, C: C, H: H, causal: causal)
    let grad = reference.backward(qkv, dout: dout)
    func loss(_ x: [Double]) -> Double {
      // the reference reads Float inputs: difference in Double through a Float-exact step
      let out = reference.forward(x.map { Float($0) }).out
      return zip(out, dout).reduce(0) { $0 + $1.0 * Double($1.1) }
    }
    var rng = SeededRandom(seed: 4)
    var worst = 0.0
    for _ in 0..<40 {
      let i = Int(rng.next() % UInt64(qkv.count))
      var x = qkv.map(Double.init)
      let eps = 1.0 / 1024  // exact in Float beside entries of magnitude below 8
      x[i] += eps
      let up = loss(x)
      x[i] -= 2 * eps
      let down = loss(x)
      let fd = (up - down) / (2 * eps)
      worst = max(worst, abs(fd - grad[i]) / max(abs(fd), abs(grad[i]), 1e-3))
    }
    #expect(worst < 1e-4)
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
