/// How K parameter-server shards split a parameter slab: each owns a contiguous run of the
/// gradient norm's 16 chunks (`Optimizer.normChunk`), so each shard's partial sums of squares are
/// exactly those `igpt train` adds, and the norm summed over them in chunk order is its norm.
public struct ShardPlan: Equatable, Sendable {
  /// Values in the whole slab.
  public let total: Int
  public let shards: Int

  /// At most 16 shards (one per norm chunk).
  public static let maxShards = Optimizer.normChunks

  public init(total: Int, shards: Int) throws {
    guard (1...Self.maxShards).contains(shards) else {
      throw ConfigError("a run has 1 to \(Self.maxShards) parameter-server shards (asked for \(shards))")
    }
    self.total = total
    self.shards = shards
  }

  /// The norm chunks shard k owns.
  public func chunks(_ k: Int) -> Range<Int> {
    (Optimizer.normChunks * k / shards)..<(Optimizer.normChunks * (k + 1) / shards)
  }

  /// The slab values shard k owns.
  public func elements(_ k: Int) -> Range<Int> {
    let c = chunks(k)
    return Optimizer.normChunk(c.lowerBound, total: total).lowerBound..<Optimizer.normChunk(c.upperBound - 1, total: total).upperBound
  }
}
