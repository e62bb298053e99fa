import IGPTKernels

/// One step's gradient summed over a `GradientTree` as its nodes arrive, in any order: each
/// node is combined with its sibling as soon as both are in, so only nodes still waiting for a
/// sibling hold a buffer. The node that covers microbatch 0 lives in `output` (the optimizer's
/// gradient slab), where the root ends.
///
/// With a `capacity`, at most that many nodes wait at once: a node arriving when all are taken
/// either takes the place of the rightmost waiting one (which is evicted: its microbatches must
/// be computed again) or, being right of them all, is refused. Leftmost first, the sum always
/// completes: in-order arrival never holds more than depth + 1 nodes.
public final class GradientReduction {
  /// What became of a node handed to `add`.
  public enum Outcome: Equatable {
    /// Kept or combined; `evicted` had to make room (their microbatches go back to the queue).
    case accepted(evicted: [GradientTree.Node])
    /// No room and right of every waiting node: compute it again later.
    case refused
    /// Overlaps a node already summed (a duplicate).
    case duplicate
  }

  public let tree: GradientTree
  public let parameterCount: Int
  public let output: UnsafeMutablePointer<Float>
  /// Waiting nodes at most (nil = unbounded).
  public let capacity: Int?
  /// Nodes waiting for a sibling, with the nodes that were added into each.
  private var waiting: [GradientTree.Node: (buffer: UnsafeMutablePointer<Float>, added: [GradientTree.Node])] = [:]
  /// One free buffer kept for the next arrival (freed in `reset`).
  private var spare: UnsafeMutablePointer<Float>?
  public private(set) var isComplete = false
  /// Most buffers held at once besides `output` (waiting nodes not in it, plus the spare).
  public private(set) var peakBuffers = 0

  public init(tree: GradientTree, parameterCount: Int, output: UnsafeMutablePointer<Float>, capacity: Int? = nil) {
    self.tree = tree
    self.parameterCount = parameterCount
    self.output = output
    self.capacity = capacity
  }

  deinit { reset() }

  /// The capacity the coordinator uses: log2 M + 2 waiting nodes.
  public static func boundedCapacity(_ tree: GradientTree) -> Int { tree.depth + 2 }

  public var waitingNodes: [GradientTree.Node] { Array(waiting.keys) }

  /// Starts a new step: nothing waits, nothing is summed.
  public func reset() {
    for (_, w) in waiting where w.buffer != output { w.buffer.deallocate() }
    waiting = [:]
    spare?.deallocate()
    spare = nil
    isComplete = false
  }

  /// Adds a node's sum read from `values` (copied only when it must wait).
  @discardableResult
  public func add(_ node: GradientTree.Node, values: UnsafePointer<Float>) -> Outcome {
    add(node, .borrowed(values))
  }

  /// A buffer to decode an arriving node into, then handed to `add(_:buffer:)`.
  public func scratch() -> UnsafeMutablePointer<Float> {
    if let s = spare {
      spare = nil
      return s
    }
    return .allocate(capacity: parameterCount)
  }

  /// Adds a node held in a buffer from `scratch()` (owned from now on): it waits in that very
  /// buffer, or is combined and the buffer kept for the next arrival.
  @discardableResult
  public func add(_ node: GradientTree.Node, buffer: UnsafeMutablePointer<Float>) -> Outcome {
    add(node, .owned(buffer))
  }

  private enum Source {
    case borrowed(UnsafePointer<Float>)
    case owned(UnsafeMutablePointer<Float>)
    var pointer: UnsafePointer<Float> {
      switch self {
      case .borrowed(let p): p
      case .owned(let p): UnsafePointer(p)
      }
    }
  }

  /// Adds a node: combined up the tree as far as its siblings are in, then kept waiting (room
  /// made by evicting a node to its right when full) or, at the root, complete.
  private func add(_ node: GradientTree.Node, _ source: Source) -> Outcome {
    defer { notePeak() }
    guard !isComplete, !tree.range(node).isEmpty, !overlapsWaiting(node) else {
      if case .owned(let b) = source { release(b) }
      return .duplicate
    }
    var (n, sum, added) = climb(node, source)
    var evicted: [GradientTree.Node] = []
    if sum == nil {
      guard let room = makeRoom(for: n) else {
        if case .owned(let b) = source { release(b) }
        return .refused
      }
      evicted = room
      sum = place(source, startsStep: tree.range(n).lowerBound == 0)
    } else if tree.range(n).lowerBound == 0 && sum != output {
      output.update(from: sum!, count: parameterCount)
      release(sum!)
      sum = output
    }
    if n == tree.root { isComplete = true } else { waiting[n] = (sum!, added) }
    return .accepted(evicted: evicted)
  }

  /// The walk up the tree: each waiting sibling is summed in and the walk goes on from the
  /// parent; an empty sibling (beyond the last microbatch) is passed over; a missing one stops
  /// it. Returns the node reached, the buffer holding its sum (nil when nothing was combined:
  /// the sum is still in `source`), and the nodes added into it.
  private func climb(_ node: GradientTree.Node, _ source: Source) -> (GradientTree.Node, UnsafeMutablePointer<Float>?, [GradientTree.Node]) {
    var n = node
    var added = [node]
    var sum: UnsafeMutablePointer<Float>?
    while n != tree.root {
      let s = tree.sibling(n)
      if !tree.range(s).isEmpty {
        guard let w = waiting.removeValue(forKey: s) else { break }
        if let a = sum {
          // both halves in buffers: keep the sum in output when either is output
          let (dst, src) = a == output ? (a, w.buffer) : (w.buffer, a)
          Self.sum(into: dst, src, parameterCount)
          release(src)
          sum = dst
        } else {
          Self.sum(into: w.buffer, source.pointer, parameterCount)
          if case .owned(let b) = source { release(b) }
          sum = w.buffer
        }
        added += w.added
      }
      n = tree.parent(n)
    }
    return (n, sum, added)
  }

  /// Room for node n to wait: nothing to do below capacity; else the rightmost waiting node
  /// is evicted if it lies right of n (returns what was added into it), or nil: refused.
  private func makeRoom(for n: GradientTree.Node) -> [GradientTree.Node]? {
    guard let capacity, n != tree.root, waiting.count >= capacity else { return [] }
    guard let victim = rightmostWaiting(), tree.range(victim).lowerBound > tree.range(n).lowerBound else { return nil }
    let v = waiting.removeValue(forKey: victim)!
    release(v.buffer)
    return v.added
  }

  /// The buffer a node that waits is kept in: output for the node that starts the step, else
  /// its own buffer when owned, else a copy.
  private func place(_ source: Source, startsStep: Bool) -> UnsafeMutablePointer<Float> {
    if case .owned(let b) = source, !startsStep { return b }
    let dst = startsStep ? output : scratch()
    dst.update(from: source.pointer, count: parameterCount)
    if case .owned(let b) = source { release(b) }
    return dst
  }

  /// Gives back a buffer from `scratch()` that is not to be added (its decoding failed).
  public func recycle(_ b: UnsafeMutablePointer<Float>) { release(b) }

  /// Keeps one free buffer for the next arrival; frees the rest (never `output`).
  private func release(_ b: UnsafeMutablePointer<Float>) {
    guard b != output else { return }
    if spare == nil { spare = b } else { b.deallocate() }
  }

  private func rightmostWaiting() -> GradientTree.Node? {
    waiting.keys.max { tree.range($0).lowerBound < tree.range($1).lowerBound }
  }

  /// Whether a microbatch of `node` is already in a waiting node.
  private func overlapsWaiting(_ node: GradientTree.Node) -> Bool {
    let r = tree.range(node)
    return waiting.keys.contains { tree.range($0).overlaps(r) }
  }

  private func notePeak() {
    let n = waiting.values.filter { $0.buffer != output }.count + (spare == nil ? 0 : 1)
    peakBuffers = max(peakBuffers, n)
  }

  /// dst += src, element by element (commutative: the bytes do not depend on which is dst).
  static func sum(into dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    Parallel.forChunks(count, align: 16) { _, r in
      for i in r { dst[i] += src[i] }
    }
  }
}
