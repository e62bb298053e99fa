import IGPTKernels

/// Which images make up each step's batch: the split is read epoch after epoch, each epoch in a
/// permutation fixed by (seed, epoch). A step's batch, and each of its microbatches, is a
/// function of (seed, step) alone, so resuming needs only the step, and any worker can be handed
/// any microbatch.
public struct DataOrder: Sendable {
  public let count: Int
  public let seed: UInt64
  private var cachedEpoch = -1
  private var permutation: [Int] = []

  public init(count: Int, seed: UInt64) {
    precondition(count > 0)
    self.count = count
    self.seed = seed
  }

  /// The permutation of epoch e (Fisher-Yates from a generator seeded by seed and e).
  public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
    var rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch) &+ 0xD47A)
    var p = Array(0..<count)
    for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
    return p
  }

  /// The image index at global position `position` (0-based, across epochs).
  public mutating func image(at position: Int) -> Int {
    let epoch = position / count
    if epoch != cachedEpoch {
      permutation = Self.permutation(count: count, seed: seed, epoch: epoch)
      cachedEpoch = epoch
    }
    return permutation[position % count]
  }

  /// Image indices of microbatch `micro` (of size `microbatch`) of step `step` (global batch `batch`).
  public mutating func microbatch(step: Int, micro: Int, batch: Int, microbatch: Int) -> [Int] {
    let start = step * batch + micro * microbatch
    return (start..<(start + microbatch)).map { image(at: $0) }
  }

  /// (epoch, offset within it) of a step's first image: the data position a checkpoint records.
  public func position(ofStep step: Int, batch: Int) -> (epoch: Int, offset: Int) {
    ((step * batch) / count, (step * batch) % count)
  }
}
