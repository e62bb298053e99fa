/// The fixed binary tree in which a step's microbatch gradients are summed, the same in
/// `igpt train`, in a worker summing a block of microbatches and in the coordinator.
///
/// The tree is the perfect binary tree over the next power of two >= M microbatches with the
/// leaves beyond M left out: node (level j, index k) sums microbatches
/// [k * 2^j, min((k + 1) * 2^j, M)); a node whose right half is empty is its left half. Float
/// addition is commutative, so a node's sum (left + right) has the same bytes whichever half
/// came first: only the tree fixes the bytes, never who computed what or when it arrived.
public struct GradientTree: Sendable, Equatable {
  /// A node of the tree: the microbatches `range` sums.
  public struct Node: Hashable, Sendable, Codable, CustomStringConvertible {
    public var level: Int
    public var index: Int
    public init(level: Int, index: Int) {
      self.level = level
      self.index = index
    }
    public var description: String { "(\(level), \(index))" }
  }

  /// Microbatches per step (M).
  public let count: Int
  /// Levels above the leaves: 2^depth is the smallest power of two >= count.
  public let depth: Int

  public init(count: Int) {
    precondition(count >= 1, "a step has at least one microbatch")
    self.count = count
    var d = 0
    while (1 << d) < count { d += 1 }
    depth = d
  }

  public var root: Node { Node(level: depth, index: 0) }
  public func leaf(_ micro: Int) -> Node { Node(level: 0, index: micro) }

  /// The microbatches a node sums (empty for a node wholly beyond the last microbatch).
  public func range(_ n: Node) -> Range<Int> {
    let lo = n.index << n.level
    return min(lo, count)..<min(lo + (1 << n.level), count)
  }

  public func parent(_ n: Node) -> Node { Node(level: n.level + 1, index: n.index >> 1) }
  public func sibling(_ n: Node) -> Node { Node(level: n.level, index: n.index ^ 1) }

  /// Whether `n` lies inside (or is) `ancestor`.
  public func node(_ n: Node, isWithin ancestor: Node) -> Bool {
    n.level <= ancestor.level && n.index >> (ancestor.level - n.level) == ancestor.index
  }

  /// The lowest node summing exactly microbatches lo..<lo + n, or nil when no node does (a
  /// block from the wire is checked with this).
  public func node(start lo: Int, microbatches n: Int) -> Node? {
    guard lo >= 0, n >= 1, lo < count, n <= count - lo else { return nil }
    for level in 0...depth where lo % (1 << level) == 0 {
      let node = Node(level: level, index: lo >> level)
      if range(node) == lo..<(lo + n) { return node }
    }
    return nil
  }

  /// The aligned blocks of `size` microbatches (a power of two; the last may be shorter) that
  /// cover the step, in order: each is a node, so summing each block first changes no byte.
  public func blocks(size: Int) -> [Node] {
    var level = 0
    while (1 << (level + 1)) <= min(size, 1 << depth) { level += 1 }
    return stride(from: 0, to: count, by: 1 << level).map { Node(level: level, index: $0 >> level) }
  }

  /// The largest block size that keeps `workers` equally fast workers within 1/8 of an even
  /// split of the step (fewer, larger blocks send fewer gradients; 1 when nothing larger fits).
  public func blockSize(workers: Int) -> Int {
    let w = max(1, workers)
    let even = Double(count) / Double(w)
    var size = 1 << depth
    while size > 1 {
      if Double(busiestWorker(blockSize: size, workers: w)) <= even * 1.125 { return size }
      size /= 2
    }
    return 1
  }

  /// Microbatches the busiest of `workers` computes when blocks go out in turn.
  func busiestWorker(blockSize size: Int, workers: Int) -> Int {
    var load = [Int](repeating: 0, count: workers)
    for (i, start) in stride(from: 0, to: count, by: size).enumerated() { load[i % workers] += min(size, count - start) }
    return load.max() ?? 0
  }
}
