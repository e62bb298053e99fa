import IGPTKernels

/// Pretraining augmentation of a palette store's images (`data.augment`): each training image
/// shifted by up to `translate` pixels on each axis (the border filled with the palette's darkest
/// colour) and, with `flip`, mirrored left to right half of the time.
///
/// What is drawn for an image depends only on (seed, the image's position in the data order),
/// never on which process builds the microbatch or how a step is split, so resumed and cluster
/// runs see the same pixels as one uninterrupted `igpt train`. Validation and probes read the
/// images as stored.
public struct Augmentation: Codable, Equatable, Sendable {
  /// Largest shift in pixels, each axis, drawn uniformly in -translate...translate.
  public var translate = 0
  /// Mirror left to right with probability 1/2.
  public var flip = false

  public init(translate: Int = 0, flip: Bool = false) {
    self.translate = translate
    self.flip = flip
  }

  /// Whether it changes anything.
  public var isActive: Bool { translate > 0 || flip }

  /// What one image gets: a mirror, then a shift of (dx, dy) pixels.
  public struct Draw: Equatable, Sendable {
    public var flip: Bool
    public var dx: Int
    public var dy: Int
  }

  /// The draw of the image at data-order position `position` of a run seeded by `seed`.
  public func draw(seed: UInt64, position: Int) -> Draw {
    var rng = SeededRandom(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ UInt64(position) &* 0x9E37_79B9 &+ 0xA06)
    let span = UInt64(2 * translate + 1)
    let mirrored = flip && rng.next() & 1 == 1
    let dx = translate > 0 ? Int(rng.next() % span) - translate : 0
    let dy = translate > 0 ? Int(rng.next() % span) - translate : 0
    return Draw(flip: mirrored, dx: dx, dy: dy)
  }

  /// Applies `d` to one side x side image of tokens in place: out(x, y) = in(x' - dx, y - dy),
  /// x' the mirrored column when flipped, and `fill` where that falls outside the image.
  public static func apply(_ d: Draw, to image: UnsafeMutablePointer<Int32>, side: Int, fill: Int32) {
    if !d.flip && d.dx == 0 && d.dy == 0 { return }
    let source = Array(UnsafeBufferPointer(start: image, count: side * side))
    for y in 0..<side {
      let sy = y - d.dy
      for x in 0..<side {
        let sx0 = x - d.dx
        let sx = d.flip ? side - 1 - sx0 : sx0
        image[y * side + x] = (0..<side).contains(sy) && (0..<side).contains(sx0) ? source[sy * side + sx] : fill
      }
    }
  }

  /// The token a shift uncovers: the colour nearest black (the lowest sum of channel values;
  /// Fashion-MNIST's and most photos' borders), the lowest index on ties.
  public static func fillToken(colors: [Float], channels: Int) -> Int32 {
    var best = 0
    var bestSum = Float.infinity
    for k in 0..<(colors.count / channels) {
      var s: Float = 0
      for c in 0..<channels { s += colors[k * channels + c] }
      if s < bestSum {
        bestSum = s
        best = k
      }
    }
    return Int32(best)
  }
}
