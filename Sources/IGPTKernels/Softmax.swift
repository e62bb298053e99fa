import Foundation

/// Row softmax helpers shared by attention and the cross-entropy head.
public enum Softmax {
  /// In place: row[0..<n] = softmax(row[0..<n]) (max subtracted); returns log(sum exp(x - max)) + max.
  @discardableResult
  @inline(always)
  public static func inPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    typealias V = FastMath.V
    var vmax = V(repeating: -Float.greatestFiniteMagnitude)
    var i = 0
    while i + 16 <= n {
      vmax = FastMath.max16(vmax, FastMath.load(row + i))
      i += 16
    }
    var mx = FastMath.maximum(vmax)
    while i < n {
      mx = Swift.max(mx, row[i])
      i += 1
    }
    let vm = V(repeating: mx)
    var vsum = V()
    i = 0
    while i + 16 <= n {
      let e = FastMath.exp16(FastMath.load(row + i) - vm)
      FastMath.store(e, row + i)
      vsum += e
      i += 16
    }
    if i < n {
      let rest = n - i
      let e = FastMath.exp16(FastMath.loadPartial(row + i, rest) - vm)
      FastMath.storePartial(e, row + i, rest)
      for j in 0..<rest { vsum[j] += e[j] }
    }
    let sum = FastMath.sum(vsum)
    let inv = 1 / sum
    let vinv = V(repeating: inv)
    i = 0
    while i + 16 <= n {
      FastMath.store(FastMath.load(row + i) * vinv, row + i)
      i += 16
    }
    while i < n {
      row[i] *= inv
      i += 1
    }
    return mx + logf(sum)
  }

  /// In place over a row whose first `valid` entries are scores and whose length `width` is a
  /// multiple of 16: entries valid..<width become exactly 0, the rest their softmax.
  /// Returns log(sum(exp(scores))), from which `fromLogSumExp` rebuilds the row.
  @discardableResult
  @inline(always)
  public static func inPlaceMasked(_ row: UnsafeMutablePointer<Float>, valid: Int, width: Int) -> Float {
    typealias V = FastMath.V
    let lane = V(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let lowest = V(repeating: -Float.greatestFiniteMagnitude)
    // the last vector holds the padding: lanes past `valid` read as -max before the max
    let last = width - 16
    let tailValid = V(repeating: Float(valid - last))
    var vmax = lowest
    var i = 0
    while i < last {
      vmax = FastMath.max16(vmax, FastMath.load(row + i))
      i += 16
    }
    let tail = FastMath.load(row + last).replacing(with: lowest, where: lane .>= tailValid)
    vmax = FastMath.max16(vmax, tail)
    let vm = V(repeating: FastMath.maximum(vmax))
    var vsum = V()
    i = 0
    while i < last {
      let e = FastMath.exp16(FastMath.load(row + i) - vm)
      FastMath.store(e, row + i)
      vsum += e
      i += 16
    }
    let eTail = FastMath.exp16(tail - vm).replacing(with: 0, where: lane .>= tailValid)
    vsum += eTail
    let sum = FastMath.sum(vsum)
    let vinv = V(repeating: 1 / sum)
    i = 0
    while i < last {
      FastMath.store(FastMath.load(row + i) * vinv, row + i)
      i += 16
    }
    FastMath.store(eTail * vinv, row + last)
    return vm[0] + logf(sum)
  }

  /// Rebuilds a softmax row from its scores and log-sum-exp: row[j] = exp(row[j] - lse) for
  /// j < valid, exactly 0 for valid..<width (width a multiple of 16).
  @inline(always)
  public static func fromLogSumExp(_ row: UnsafeMutablePointer<Float>, lse: Float, valid: Int, width: Int) {
    typealias V = FastMath.V
    let lane = V(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let vl = V(repeating: lse)
    var i = 0
    while i < width {
      let e = FastMath.exp16(FastMath.load(row + i) - vl)
      FastMath.store(e.replacing(with: 0, where: lane .>= V(repeating: Float(valid - i))), row + i)
      i += 16
    }
  }

  /// Softmax backward in place: d[j] = p[j] * (d[j] - sum_k d[k] p[k]) over `width` entries
  /// (a multiple of 16); where p is 0 the result is 0.
  @inline(always)
  public static func backwardInPlace(
    _ d: UnsafeMutablePointer<Float>, probs p: UnsafePointer<Float>, width: Int
  ) {
    typealias V = FastMath.V
    var acc = V()
    var i = 0
    while i < width {
      acc += FastMath.load(d + i) * FastMath.load(p + i)
      i += 16
    }
    let dot = V(repeating: FastMath.sum(acc))
    i = 0
    while i < width {
      FastMath.store(FastMath.load(p + i) * (FastMath.load(d + i) - dot), d + i)
      i += 16
    }
  }
}
