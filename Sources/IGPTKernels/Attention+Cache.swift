/// One query row against a growing key/value cache (the sampler's attention), through the same
/// tile products as the blocked kernels: keys kept transposed in (D, 64) panels per key block,
/// values as contiguous rows, so each product streams its operand in order.
extension Attention {
  /// Layout of one (image, head)'s cache: `keyPanels` (key blocks, D, 64) floats of K^T, then
  /// rowStride(T) rows of `width` floats of V (D rounded up to 16, the rest zero).
  public struct HeadCache: Sendable {
    public let T: Int, D: Int

    public init(T: Int, D: Int) {
      self.T = T
      self.D = D
    }

    var width: Int { (D + 15) / 16 * 16 }
    var keyPanels: Int { HeadScratch.keyBlocks(T) * D * block }
    /// Floats of one head's cache.
    public var floats: Int { keyPanels + rowStride(T) * width }
    /// Floats of scratch `attend` needs.
    public var scratchFloats: Int { rowStride(T) + 2 * width }

    /// Writes position t's key and value (D floats each) into the cache at `cache` (allocated
    /// zeroed, so value rows' padding lanes stay 0).
    public func append(
      _ cache: UnsafeMutablePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position t: Int
    ) {
      let panel = cache + (t / block) * D * block + t % block
      for d in 0..<D { panel[d * block] = key[d] }
      (cache + keyPanels + t * width).update(from: value, count: D)
    }

    /// out[0..<D] = softmax(scale q . K[0...t]) @ V[0...t] for one query q (D floats), the
    /// cache holding positions 0...t.
    public func attend(
      out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, cache: UnsafePointer<Float>,
      position t: Int, scratch: UnsafeMutablePointer<Float>
    ) {
      let scale = 1 / Float(D).squareRoot()
      let qs = scratch, scores = scratch + width, o = scores + rowStride(T)
      for d in 0..<D { qs[d] = q[d] * scale }
      // scores (t + 1, to the next multiple of 16) = (scale q) @ K^T, one key block at a time
      let n = (t + 1 + 15) / 16 * 16
      var x = 0
      while x < n {
        AttentionTile.rowProduct(
          c: scores + x, a: qs, aks: 1, b: cache + (x / block) * D * block, ldb: block, depth: D,
          n: min(block, n - x), accumulate: false)
        x += block
      }
      Softmax.inPlace(scores, t + 1)
      // o = P @ V
      AttentionTile.rowProduct(
        c: o, a: scores, aks: 1, b: cache + keyPanels, ldb: width, depth: t + 1, n: width, accumulate: false)
      out.update(from: o, count: D)
    }
  }
}
