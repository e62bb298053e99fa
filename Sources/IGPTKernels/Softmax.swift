import Foundation

/// Row softmax helpers shared by attention and the cross-entropy head.
public enum Softmax {
  /// In place: row[0..<n] = softmax(row[0..<n]) (max subtracted); returns log(sum exp(x - max)) + max.
  @discardableResult
  @inline(__always)
  public static func inPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    typealias V = FastMath.V
    var vmax = V(repeating: -Float.greatestFiniteMagnitude)
    var i = 0
    while i + 16 <= n {
      vmax = FastMath.max16(vmax, FastMath.load(row + i))
      i += 16
    }
    var mx = vmax.max()
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
    let sum = vsum.sum()
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
}
