import CBLAS
import Foundation
import IGPTKernels

/// Multinomial logistic regression with an L2 penalty on the weights (not the biases), fitted
/// with L-BFGS: the paper's linear probe.
///
/// loss(W, b) = mean_i -log softmax(x_i W + b)[y_i] + (l2 / 2) ||W||^2
public struct LogisticRegression: Sendable {
  public let width: Int
  public let classes: Int
  /// (width, classes), row-major.
  public var weights: [Float]
  public var bias: [Float]
  public var iterations = 0
  /// Whether the last fit converged before its iteration limit, and its largest gradient component.
  public var converged = true
  public var gradientMax = 0.0
  /// Fixed row chunks of the loss (threads take whole chunks).
  static let chunks = 16

  public init(width: Int, classes: Int) {
    self.width = width
    self.classes = classes
    weights = [Float](repeating: 0, count: width * classes)
    bias = [Float](repeating: 0, count: classes)
  }

  /// Fits on a (standardised) feature set; warm-starts from the current parameters.
  public mutating func fit(_ data: FeatureSet, l2: Double, maxIterations: Int = 500) {
    precondition(data.width == width, "feature width \(data.width) != \(width)")
    let D = width, K = classes, N = data.count
    var solver = LBFGS()
    solver.maxIterations = maxIterations
    var logits = [Float](repeating: 0, count: N * K)
    var w32 = [Float](repeating: 0, count: D * K)
    var residual = [Float](repeating: 0, count: N * K)
    var gw32 = [Float](repeating: 0, count: D * K)
    let x0 = weights.map(Double.init) + bias.map(Double.init)
    let result = solver.minimize(from: x0) { p, grad in
      for i in 0..<(D * K) { w32[i] = Float(p[i]) }
      // logits (N, K) = X (N, D) @ W (D, K) + b
      data.values.withUnsafeBufferPointer { x in
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(K), Int32(D), 1, x.baseAddress, Int32(D),
                    w32, Int32(K), 0, &logits, Int32(K))
      }
      // Softmax, loss and residual row by row, in `Self.chunks` fixed row chunks whose partial
      // sums are added in chunk order: the same bytes whatever the thread count.
      var partialLoss = [Double](repeating: 0, count: Self.chunks)
      var partialBias = [Double](repeating: 0, count: Self.chunks * K)
      logits.withUnsafeMutableBufferPointer { lg in
        residual.withUnsafeMutableBufferPointer { rs in
          partialLoss.withUnsafeMutableBufferPointer { pl in
            partialBias.withUnsafeMutableBufferPointer { pb in
              data.labels.withUnsafeBufferPointer { labels in
                let lg = lg.baseAddress!, rs = rs.baseAddress!, pl = pl.baseAddress!, pb = pb.baseAddress!
                let labels = labels.baseAddress!, bias = Array(p[(D * K)...])
                Parallel.forChunks(Self.chunks) { _, chunkRange in
                  var e = [Double](repeating: 0, count: K)
                  for chunk in chunkRange {
                    var loss = 0.0
                    for i in Parallel.chunkRange(chunk, of: Self.chunks, count: N) {
                      let row = lg + i * K
                      var m = -Float.infinity
                      for k in 0..<K {
                        row[k] += Float(bias[k])
                        m = max(m, row[k])
                      }
                      var z = 0.0
                      for k in 0..<K {
                        e[k] = exp(Double(row[k] - m))
                        z += e[k]
                      }
                      let y = labels[i]
                      loss += log(z) - Double(row[y] - m)
                      for k in 0..<K {
                        let r = (e[k] / z - (k == y ? 1 : 0)) / Double(N)
                        rs[i * K + k] = Float(r)
                        pb[chunk * K + k] += r
                      }
                    }
                    pl[chunk] = loss
                  }
                }
              }
            }
          }
        }
      }
      let loss = partialLoss.reduce(0, +)
      var gb = [Double](repeating: 0, count: K)
      for chunk in 0..<Self.chunks { for k in 0..<K { gb[k] += partialBias[chunk * K + k] } }
      // dW (D, K) = X^T (N, D)^T @ residual (N, K)
      data.values.withUnsafeBufferPointer { x in
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(D), Int32(K), Int32(N), 1, x.baseAddress, Int32(D),
                    residual, Int32(K), 0, &gw32, Int32(K))
      }
      var penalty = 0.0
      for i in 0..<(D * K) {
        penalty += p[i] * p[i]
        grad[i] = Double(gw32[i]) + l2 * p[i]
      }
      for k in 0..<K { grad[D * K + k] = gb[k] }
      return loss / Double(N) + 0.5 * l2 * penalty
    }
    weights = result.x[0..<(D * K)].map(Float.init)
    bias = result.x[(D * K)...].map(Float.init)
    iterations = result.iterations
    converged = result.converged
    gradientMax = result.gradientMax
  }

  /// Class probabilities (N, K) for the rows.
  public func probabilities(_ data: FeatureSet) -> [Float] {
    let N = data.count, K = classes
    var logits = [Float](repeating: 0, count: N * K)
    data.values.withUnsafeBufferPointer { x in
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(K), Int32(width), 1, x.baseAddress, Int32(width),
                  weights, Int32(K), 0, &logits, Int32(K))
    }
    for i in 0..<N {
      var m = -Float.infinity
      for k in 0..<K {
        logits[i * K + k] += bias[k]
        m = max(m, logits[i * K + k])
      }
      var z: Float = 0
      for k in 0..<K {
        logits[i * K + k] = exp(logits[i * K + k] - m)
        z += logits[i * K + k]
      }
      for k in 0..<K { logits[i * K + k] /= z }
    }
    return logits
  }

  /// Fraction of rows whose most probable class is the label.
  public func accuracy(_ data: FeatureSet) -> Double {
    guard data.count > 0 else { return .nan }
    let p = probabilities(data)
    var right = 0
    for i in 0..<data.count {
      var best = 0
      for k in 1..<classes where p[i * classes + k] > p[i * classes + best] { best = k }
      if best == data.labels[i] { right += 1 }
    }
    return Double(right) / Double(data.count)
  }
}
