import Foundation
import IGPTKernels

/// The VQ-VAE bottleneck: each D-wide encoder vector is replaced by its nearest of K codes.
///
/// Nearest by squared distance |z|^2 - 2 z.e + |e|^2, the products by one sgemm (ties go to the
/// lower index). The gradient passes straight through (dz = dq) plus the commitment loss
/// beta * mean((z - sg(q))^2). The codebook is not trained by gradients but by exponential
/// moving averages of each code's count and vector sum (van den Oord et al. 2017, appendix),
/// with Laplace smoothing; a code whose average count falls below `deadBelow` is restarted at
/// an encoder vector of the batch (chosen by a seeded generator: training stays exact).
public final class VectorQuantizer {
  public let codes: Int
  public let dim: Int
  public var beta: Float = 0.25
  public var decay: Float = 0.99
  public var epsilon: Float = 1e-5
  /// Average count under which a code is restarted.
  public var deadBelow: Float = 0.03
  /// (codes, dim): the codebook.
  public var codebook: [Float]
  /// (codes): the moving average of each code's count.
  public var clusterSize: [Float]
  /// (codes, dim): the moving average of the vectors each code took.
  public var embedSum: [Float]

  public init(codes: Int, dim: Int) {
    self.codes = codes
    self.dim = dim
    codebook = [Float](repeating: 0, count: codes * dim)
    clusterSize = [Float](repeating: 0, count: codes)
    embedSum = [Float](repeating: 0, count: codes * dim)
  }

  /// What one batch's quantisation gave.
  public struct Batch {
    /// (N) the chosen code of each vector.
    public var indices: [Int32]
    /// beta * mean((z - q)^2).
    public var commitment: Double
    /// exp(entropy) of the batch's code frequencies.
    public var perplexity: Double
    /// Distinct codes the batch used.
    public var used: Int
  }

  /// indices (N) of the nearest codes to z (N, D). `scratch` holds N * codes floats.
  public func nearest(_ z: UnsafePointer<Float>, count N: Int, scratch: UnsafeMutablePointer<Float>) -> [Int32] {
    let K = codes, D = dim
    var norms = [Float](repeating: 0, count: K)
    codebook.withUnsafeBufferPointer { e in
      for k in 0..<K { norms[k] = FastMath.dot(e.baseAddress! + k * D, e.baseAddress! + k * D, D) }
      // scratch (N, K) = z @ E^T, rows split over the threads
      Parallel.forChunks(N, align: 16) { _, rows in
        BLAS.sgemm(transB: true, m: rows.count, n: K, k: D, a: z + rows.lowerBound * D, lda: D, b: e.baseAddress!, ldb: D,
                   beta: 0, c: scratch + rows.lowerBound * K, ldc: K)
      }
    }
    var indices = [Int32](repeating: 0, count: N)
    indices.withUnsafeMutableBufferPointer { out in
      Parallel.forChunks(N) { _, rows in
        for n in rows {
          let row = scratch + n * K
          var best = 0, bestDistance = Float.infinity
          for k in 0..<K {
            let d = norms[k] - 2 * row[k]
            if d < bestDistance { bestDistance = d; best = k }
          }
          out[n] = Int32(best)
        }
      }
    }
    return indices
  }

  /// q (N, D) = the codes of z (N, D); the batch's indices, commitment loss and usage.
  public func forward(q: UnsafeMutablePointer<Float>, z: UnsafePointer<Float>, count N: Int, scratch: UnsafeMutablePointer<Float>) -> Batch {
    let D = dim
    let indices = nearest(z, count: N, scratch: scratch)
    var squared = 0.0
    var counts = [Int](repeating: 0, count: codes)
    codebook.withUnsafeBufferPointer { e in
      for n in 0..<N {
        let k = Int(indices[n])
        counts[k] += 1
        (q + n * D).update(from: e.baseAddress! + k * D, count: D)
        for d in 0..<D {
          let diff = Double(z[n * D + d] - q[n * D + d])
          squared += diff * diff
        }
      }
    }
    return Batch(indices: indices, commitment: Double(beta) * squared / Double(N * D),
                 perplexity: Self.perplexity(counts), used: counts.filter { $0 > 0 }.count)
  }

  /// dz (N, D) = dq (straight through) + the commitment loss's gradient 2 beta (z - q) / (N D),
  /// scaled by `lossScale` as the rest of the loss is.
  public func backward(dz: UnsafeMutablePointer<Float>, dq: UnsafePointer<Float>, z: UnsafePointer<Float>,
                       q: UnsafePointer<Float>, count N: Int, lossScale: Float = 1) {
    let c = 2 * beta * lossScale / Float(N * dim)
    for i in 0..<(N * dim) { dz[i] = dq[i] + c * (z[i] - q[i]) }
  }

  /// Moves the codebook towards this batch's assignment (training only): the moving averages
  /// of counts and sums, Laplace-smoothed counts, then restarts of dead codes from z.
  public func updateCodebook(z: UnsafePointer<Float>, indices: [Int32], restartSeed: UInt64) {
    let K = codes, D = dim, N = indices.count
    var counts = [Float](repeating: 0, count: K)
    var sums = [Float](repeating: 0, count: K * D)
    for n in 0..<N {
      let k = Int(indices[n])
      counts[k] += 1
      for d in 0..<D { sums[k * D + d] += z[n * D + d] }
    }
    for k in 0..<K { clusterSize[k] = decay * clusterSize[k] + (1 - decay) * counts[k] }
    for i in 0..<(K * D) { embedSum[i] = decay * embedSum[i] + (1 - decay) * sums[i] }
    let total = clusterSize.reduce(0, +)
    for k in 0..<K {
      let smoothed = (clusterSize[k] + epsilon) / (total + Float(K) * epsilon) * total
      for d in 0..<D { codebook[k * D + d] = embedSum[k * D + d] / smoothed }
    }
    restartDeadCodes(z: z, count: N, seed: restartSeed)
  }

  /// Codes whose average count is under `deadBelow` take a vector of the batch each, as if that
  /// vector had been their only member (count 1).
  func restartDeadCodes(z: UnsafePointer<Float>, count N: Int, seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    for k in 0..<codes where clusterSize[k] < deadBelow {
      let n = Int(rng.next() % UInt64(N))
      for d in 0..<dim {
        codebook[k * dim + d] = z[n * dim + d]
        embedSum[k * dim + d] = z[n * dim + d]
      }
      clusterSize[k] = 1
    }
  }

  /// A fresh codebook: every code restarted at a vector of the first batch.
  public func initialize(z: UnsafePointer<Float>, count N: Int, seed: UInt64) {
    clusterSize = [Float](repeating: 0, count: codes)
    restartDeadCodes(z: z, count: N, seed: seed)
  }

  /// exp(-sum p log p) of code counts.
  public static func perplexity(_ counts: [Int]) -> Double {
    let total = Double(counts.reduce(0, +))
    guard total > 0 else { return 0 }
    var h = 0.0
    for c in counts where c > 0 {
      let p = Double(c) / total
      h -= p * log(p)
    }
    return exp(h)
  }
}
