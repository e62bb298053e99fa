import IGPTKernels

/// A feed-forward convolutional network as a list of nodes over numbered NHWC activations,
/// forward and backward: the encoder and the decoder of a VQ-VAE are each one.
///
/// Activation 0 is the input; node i writes activation i + 1 from an earlier one. Residual
/// connections are `add` nodes naming a second input. Shapes are per image (batch 1) and
/// scaled to the batch at run time; parameters are offsets into the model's one slab.
public struct ConvNetwork: Sendable {
  public enum Kind: Sendable, Equatable {
    case conv(Conv2D.Shape)
    case convTranspose(ConvTranspose2D.Shape)
    case relu
    /// out = input + activation `other`.
    case add(other: Int)
  }

  public struct Node: Sendable {
    public var kind: Kind
    public var input: Int
    /// Offsets of the weight and the bias in the slab (-1: none).
    public var weight: Int = -1
    public var bias: Int = -1
  }

  public private(set) var nodes: [Node] = []
  /// Floats per image of each activation (index 0: the input).
  public private(set) var sizes: [Int]
  /// (height, width, channels) of each activation.
  public private(set) var geometry: [(Int, Int, Int)]

  public init(height: Int, width: Int, channels: Int) {
    sizes = [height * width * channels]
    geometry = [(height, width, channels)]
  }

  public var output: Int { nodes.count }
  public var outputGeometry: (Int, Int, Int) { geometry[output] }

  /// Appends a node reading activation `input` (default: the last) and returns its output's index.
  @discardableResult
  mutating func append(_ kind: Kind, input: Int? = nil, weight: Int = -1, bias: Int = -1) -> Int {
    let i = input ?? output
    let (h, w, c) = geometry[i]
    let out: (Int, Int, Int)
    switch kind {
    case .conv(let s):
      precondition(s.height == h && s.width == w && s.inChannels == c, "conv input mismatch")
      out = (s.outHeight, s.outWidth, s.outChannels)
    case .convTranspose(let s):
      precondition(s.height == h && s.width == w && s.inChannels == c, "convTranspose input mismatch")
      out = (s.outHeight, s.outWidth, s.outChannels)
    case .relu: out = (h, w, c)
    case .add(let other):
      precondition(sizes[other] == sizes[i], "add of unequal activations")
      out = (h, w, c)
    }
    nodes.append(Node(kind: kind, input: i, weight: weight, bias: bias))
    sizes.append(out.0 * out.1 * out.2)
    geometry.append(out)
    return output
  }

  /// Im2col scratch per image (the largest node's).
  public var colsPerImage: Int {
    nodes.map { n -> Int in
      switch n.kind {
      case .conv(let s): return s.colsCount
      case .convTranspose(let s): return s.colsCount
      default: return 0
      }
    }.max() ?? 0
  }

  /// Forward multiply-adds per image.
  public var macsPerImage: Int {
    nodes.reduce(0) { t, n in
      switch n.kind {
      case .conv(let s): return t + s.macs
      case .convTranspose(let s): return t + s.macs
      default: return t
      }
    }
  }

  /// Runs every node: acts[0] holds the input, acts[i + 1] gets node i's output.
  public func forward(acts: [UnsafeMutablePointer<Float>], params: UnsafePointer<Float>, cols: UnsafeMutablePointer<Float>, batch B: Int) {
    for (i, n) in nodes.enumerated() {
      let x = UnsafePointer(acts[n.input]), y = acts[i + 1]
      switch n.kind {
      case .conv(let s):
        Conv2D.forward(out: y, inp: x, w: params + n.weight, b: params + n.bias, cols: cols, s.with(batch: B))
      case .convTranspose(let s):
        ConvTranspose2D.forward(out: y, inp: x, w: params + n.weight, b: params + n.bias, cols: cols, s.with(batch: B))
      case .relu:
        ReLU.forward(out: y, inp: x, N: B * sizes[i + 1])
      case .add(let other):
        let o = acts[other], N = B * sizes[i + 1]
        Parallel.forChunks(N, align: 16) { _, r in
          for j in r { y[j] = x[j] + o[j] }
        }
      }
    }
  }

  /// Buffers for the backward pass: one gradient per activation, the scratch for an activation
  /// that has a gradient already (its second consumer's part is added to it), and col scratch.
  public struct GradientBuffers {
    public var dacts: [UnsafeMutablePointer<Float>]
    public var spare: UnsafeMutablePointer<Float>
    public var cols: UnsafeMutablePointer<Float>
    public var dcols: UnsafeMutablePointer<Float>
  }

  /// From dacts[output] (the loss's gradient of the output) back to dacts[0] (unless
  /// `inputGradient` is false), accumulating weight and bias gradients into grads.
  public func backward(acts: [UnsafeMutablePointer<Float>], g: GradientBuffers, params: UnsafePointer<Float>,
                       grads: UnsafeMutablePointer<Float>, batch B: Int, inputGradient: Bool) {
    var written = [Bool](repeating: false, count: sizes.count)
    written[output] = true
    /// Where a node writes input j's gradient: the buffer itself the first time, else the spare.
    func target(_ j: Int) -> UnsafeMutablePointer<Float> { written[j] ? g.spare : g.dacts[j] }
    func finish(_ j: Int, _ t: UnsafeMutablePointer<Float>) {
      if t == g.spare {
        let d = g.dacts[j]
        Parallel.forChunks(B * sizes[j], align: 16) { _, r in
          for k in r { d[k] += t[k] }
        }
      }
      written[j] = true
    }
    for (i, n) in nodes.enumerated().reversed() {
      let x = UnsafePointer(acts[n.input]), dy = UnsafePointer(g.dacts[i + 1]), N = B * sizes[i + 1]
      if case .add(let other) = n.kind {
        // both inputs get dy, one after the other (each may need the spare)
        for j in [n.input, other] {
          let t = target(j)
          t.update(from: dy, count: N)
          finish(j, t)
        }
        continue
      }
      let dx = n.input != 0 || inputGradient ? target(n.input) : nil
      switch n.kind {
      case .conv(let s):
        Conv2D.backward(dinp: dx, dw: grads + n.weight, db: grads + n.bias, dout: dy, inp: x, w: params + n.weight,
                        cols: g.cols, dcols: g.dcols, s.with(batch: B))
      case .convTranspose(let s):
        ConvTranspose2D.backward(dinp: dx, dw: grads + n.weight, db: grads + n.bias, dout: dy, inp: x, w: params + n.weight,
                                 cols: g.cols, s.with(batch: B))
      case .relu:
        if let dx { ReLU.backward(dinp: dx, dout: dy, out: acts[i + 1], N: N) }
      case .add: break
      }
      if let dx { finish(n.input, dx) }
    }
  }
}
