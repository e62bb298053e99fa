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

  /// One key block of a score row in FlashAttention's online softmax: row[j] = exp(row[j] - m)
  /// for j < valid and exactly 0 for valid..<width (width a multiple of 16, valid > width - 16),
  /// where m, the row's running max, grows to cover this block; the running sum is rescaled to
  /// the new max and this block's added. Returns the factor exp(m_old - m) the row's output sums
  /// must be scaled by (1 when the max did not change; irrelevant on the first block).
  @inline(always)
  public static func onlineBlockRow(
    _ row: UnsafeMutablePointer<Float>, valid: Int, width: Int, max m: inout Float,
    sum l: inout Float, first: Bool
  ) -> Float {
    typealias V = FastMath.V
    let lane = V(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let lowest = V(repeating: -Float.greatestFiniteMagnitude)
    // one loop shape for every vector, the mask from a per-vector compare (a separately
    // computed tail vector compiled to 4-lane pieces, 4x slower)
    var vmax = lowest
    var i = 0
    while i < width {
      let x = FastMath.load(row + i).replacing(with: lowest, where: lane .>= V(repeating: Float(valid - i)))
      vmax = FastMath.max16(vmax, x)
      i += 16
    }
    let blockMax = FastMath.maximum(vmax)
    let mNew = first ? blockMax : Swift.max(m, blockMax)
    let vm = V(repeating: mNew)
    var vsum = V()
    i = 0
    while i < width {
      let e = FastMath.exp16(FastMath.load(row + i) - vm)
        .replacing(with: 0, where: lane .>= V(repeating: Float(valid - i)))
      FastMath.store(e, row + i)
      vsum += e
      i += 16
    }
    let corr: Float = first || mNew == m ? 1 : FastMath.exp(m - mNew)
    l = first ? FastMath.sum(vsum) : l * corr + FastMath.sum(vsum)
    m = mNew
    return corr
  }

  /// Softmax backward in place given the row's dot(dP, P) (attention's delta = rowsum(dO * O)):
  /// d[j] = p[j] * (d[j] - dot) over `width` entries (a multiple of 16); 0 where p is 0.
  @inline(always)
  public static func backwardGivenDot(
    _ d: UnsafeMutablePointer<Float>, probs p: UnsafePointer<Float>, dot: Float, width: Int
  ) {
    let vd = FastMath.V(repeating: dot)
    var i = 0
    while i < width {
      FastMath.store(FastMath.load(p + i) * (FastMath.load(d + i) - vd), d + i)
      i += 16
    }
  }
}
