import IGPTKernels
import Testing
@testable import IGPTTraining

/// The step's reduction tree: its nodes and blocks, and sums whose bytes depend on the tree
/// alone, never on arrival order, block sizes or the room allowed for partial sums.
@Suite struct GradientTreeTests {
  typealias Node = GradientTree.Node

  @Test func nodesAndBlocks() {
    let t = GradientTree(count: 6)
    #expect(t.depth == 3 && t.range(t.root) == 0..<6)
    #expect(t.range(Node(level: 2, index: 1)) == 4..<6)  // its right half is beyond the step
    #expect(t.range(Node(level: 1, index: 3)).isEmpty)
    #expect(t.blocks(size: 4) == [Node(level: 2, index: 0), Node(level: 2, index: 1)])
    #expect(t.blocks(size: 3) == [Node(level: 1, index: 0), Node(level: 1, index: 1), Node(level: 1, index: 2)])  // rounded down to 2
    #expect(t.blocks(size: 64) == [t.root])
    #expect(t.node(start: 4, microbatches: 2) == Node(level: 1, index: 2))  // the lowest node of 4..<6
    #expect(t.node(start: 4, microbatches: 3) == nil && t.node(start: 1, microbatches: 2) == nil && t.node(start: 5, microbatches: 2) == nil)
    #expect(t.node(Node(level: 0, index: 5), isWithin: Node(level: 2, index: 1)))
    #expect(!t.node(Node(level: 0, index: 3), isWithin: Node(level: 2, index: 1)))
    #expect(GradientTree(count: 1).root == GradientTree(count: 1).leaf(0))
  }

  /// Fewer, larger blocks while an even split stays within 1/8.
  @Test func blockSizeForTheWorkers() {
    let t = GradientTree(count: 32)
    #expect([1, 2, 3, 4, 5, 8, 32, 40].map { t.blockSize(workers: $0) } == [32, 16, 4, 8, 1, 4, 1, 1])
    #expect(GradientTree(count: 4).blockSize(workers: 3) == 1)
    #expect(GradientTree(count: 6).blockSize(workers: 1) == 8)  // one block: the root
    #expect(GradientTree(count: 6).blocks(size: 8) == [GradientTree(count: 6).root])
  }

  /// The tree's definition, written recursively: split at the largest power of two below the size.
  static func reference(_ leaves: [[Float]], _ r: Range<Int>) -> [Float] {
    if r.count == 1 { return leaves[r.lowerBound] }
    var half = 1
    while half * 2 < r.count { half *= 2 }
    let a = reference(leaves, r.lowerBound..<r.lowerBound + half), b = reference(leaves, r.lowerBound + half..<r.upperBound)
    return zip(a, b).map { $0 + $1 }
  }

  static func leaves(_ m: Int, _ p: Int, seed: UInt64) -> [[Float]] {
    var rng = SeededRandom(seed: seed)
    return (0..<m).map { _ in (0..<p).map { _ in Float(rng.uniform() * 2 - 1) * 1e3 } }
  }

  /// Sums `nodes` (each computed from the leaves it covers, in the tree) in the given order.
  static func sum(_ leaves: [[Float]], tree: GradientTree, nodes: [Node], capacity: Int? = nil) -> (bytes: [Float], peak: Int, again: Int) {
    let p = leaves[0].count
    var out = [Float](repeating: .nan, count: p)
    var again = 0
    let peak = out.withUnsafeMutableBufferPointer { o -> Int in
      let r = GradientReduction(tree: tree, parameterCount: p, output: o.baseAddress!, capacity: capacity)
      var queue = nodes
      while let n = queue.first {
        queue.removeFirst()
        let values = reference(leaves, tree.range(n))
        switch values.withUnsafeBufferPointer({ r.add(n, values: $0.baseAddress!) }) {
        case .accepted(let evicted):
          queue += evicted
          again += evicted.count
        case .refused:
          queue.append(n)
          again += 1
        case .duplicate: Issue.record("\(n) reported as a duplicate")
        }
        if let capacity { #expect(r.waitingNodes.count <= capacity) }
      }
      #expect(r.isComplete)
      return r.peakBuffers
    }
    return (out, peak, again)
  }

  @Test(arguments: [1, 2, 3, 5, 6, 8, 13, 32])
  func anyOrderAndAnyBlocksGiveTheTreesBytes(m: Int) {
    let tree = GradientTree(count: m), leaves = Self.leaves(m, 37, seed: UInt64(m))
    let want = Self.reference(leaves, 0..<m)
    var rng = SeededRandom(seed: 99)
    for trial in 0..<6 {
      let size = 1 << (trial % (tree.depth + 1))
      var nodes = tree.blocks(size: size)
      for i in stride(from: nodes.count - 1, to: 0, by: -1) { nodes.swapAt(i, Int(rng.uniform() * Double(i + 1))) }
      let got = Self.sum(leaves, tree: tree, nodes: nodes)
      #expect(got.bytes.map(\.bitPattern) == want.map(\.bitPattern), "blocks of \(size) in order \(nodes)")
    }
    // in order, one leaf at a time (as `igpt train`): at most depth buffers besides the output
    #expect(Self.sum(leaves, tree: tree, nodes: (0..<m).map(tree.leaf)).peak <= max(1, tree.depth))
  }

  /// The tree is not the running sum: summing in another order would change the bytes.
  @Test func theTreeIsNotTheRunningSum() {
    let leaves: [[Float]] = [[1e8], [1], [-1e8], [1]]
    #expect(Self.reference(leaves, 0..<4) == [0])  // (1e8 + 1) + (-1e8 + 1): each 1 is lost to rounding
    #expect(leaves.dropFirst().reduce(leaves[0]) { zip($0, $1).map { $0 + $1 } } == [1])
  }

  /// Leaves arriving far out of order (odd ones first, last first) never make more partial
  /// sums wait than the capacity; what has no room is computed again, and the bytes stay.
  @Test(arguments: [8, 13, 32])
  func boundedRoomStillCompletesWithTheSameBytes(m: Int) {
    let tree = GradientTree(count: m), leaves = Self.leaves(m, 11, seed: 5)
    let want = Self.reference(leaves, 0..<m)
    let capacity = GradientReduction.boundedCapacity(tree)
    let orders = [
      stride(from: 1, to: m, by: 2).map(tree.leaf) + stride(from: 0, to: m, by: 2).map(tree.leaf),
      (0..<m).reversed().map(tree.leaf),
    ]
    for nodes in orders {
      let got = Self.sum(leaves, tree: tree, nodes: nodes, capacity: capacity)
      #expect(got.bytes.map(\.bitPattern) == want.map(\.bitPattern))
      #expect(got.peak <= capacity + 1)
    }
    // unbounded, odd leaves first keeps m/2 partial sums: the bound is what made the difference
    #expect(Self.sum(leaves, tree: tree, nodes: orders[0]).peak >= m / 2)
  }

  @Test func aNodeOverlappingOneAlreadyInIsADuplicate() {
    let tree = GradientTree(count: 4)
    var out = [Float](repeating: 0, count: 3)
    let v: [Float] = [1, 2, 3]
    out.withUnsafeMutableBufferPointer { o in
      let r = GradientReduction(tree: tree, parameterCount: 3, output: o.baseAddress!)
      #expect(r.add(tree.leaf(2), values: v) == .accepted(evicted: []))
      #expect(r.add(tree.leaf(2), values: v) == .duplicate)
      #expect(r.add(Node(level: 1, index: 1), values: v) == .duplicate)
      #expect(r.add(Node(level: 1, index: 0), values: v) == .accepted(evicted: []))
      #expect(!r.isComplete)
      #expect(r.add(tree.leaf(3), values: v) == .accepted(evicted: []))
      #expect(r.isComplete)
      #expect(r.add(tree.leaf(0), values: v) == .duplicate)
    }
    #expect(out == [3, 6, 9])
  }
}
