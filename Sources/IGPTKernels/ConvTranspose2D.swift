/// Transposed 2-D convolution of NHWC images (the upsampling of a decoder), forward and backward.
///
/// It is the adjoint of a `Conv2D` whose output has this layer's input size: with `conv` that
/// convolution (its input = this layer's output), cols (N, K) = inp (N, IC) @ w (IC, K) and
/// out = col2im(cols) + b, N = batch * height * width, K = kernel * kernel * OC ordered
/// (ky, kx, oc). Backward is im2col of dout followed by `Matmul.backward`.
public enum ConvTranspose2D {
  /// Input (batch, height, width, inChannels); output (batch, outHeight, outWidth, outChannels)
  /// with outHeight = (height - 1) * stride - 2 * padding + kernel.
  public struct Shape: Sendable, Equatable, Codable {
    public var batch, height, width, inChannels, outChannels, kernel, stride, padding: Int

    public init(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
      self.batch = batch; self.height = height; self.width = width; self.inChannels = inChannels
      self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.padding = padding
    }

    public var outHeight: Int { (height - 1) * stride - 2 * padding + kernel }
    public var outWidth: Int { (width - 1) * stride - 2 * padding + kernel }
    /// The convolution this layer is the adjoint of (its im2col and col2im are this layer's).
    public var conv: Conv2D.Shape {
      Conv2D.Shape(batch: batch, height: outHeight, width: outWidth, inChannels: outChannels, outChannels: inChannels,
                   kernel: kernel, stride: stride, padding: padding)
    }
    public var positions: Int { batch * height * width }
    public var inputCount: Int { positions * inChannels }
    public var outputCount: Int { batch * outHeight * outWidth * outChannels }
    public var weightCount: Int { inChannels * conv.patch }
    public var colsCount: Int { positions * conv.patch }
    public var macs: Int { positions * inChannels * conv.patch }

    public func with(batch b: Int) -> Shape {
      var s = self
      s.batch = b
      return s
    }
  }

  /// out (batch, outHeight, outWidth, OC) = col2im(inp (N, IC) @ w (IC, K)) + b (OC).
  public static func forward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    b: UnsafePointer<Float>?, cols: UnsafeMutablePointer<Float>, _ s: Shape
  ) {
    let c = s.conv
    Matmul.forward(out: cols, inp: inp, w: w, N: s.positions, C: s.inChannels, OC: c.patch)
    Conv2D.col2im(out: out, cols: cols, c)
    if let b { Bias.forward(out: out, b: b, N: s.outputCount / s.outChannels, C: s.outChannels) }
  }

  /// dinp (N, IC) = im2col(dout) @ w^T (overwritten; nil: not needed), dw += inp^T @ im2col(dout),
  /// db += colsum(dout). `cols` (colsCount) is scratch.
  public static func backward(
    dinp: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    cols: UnsafeMutablePointer<Float>, _ s: Shape
  ) {
    let c = s.conv
    if let db { Bias.backward(db: db, dout: dout, N: s.outputCount / s.outChannels, C: s.outChannels) }
    Conv2D.im2col(cols: cols, inp: dout, c)
    if let dinp {
      Matmul.backward(dinp: dinp, dw: dw, dout: cols, inp: inp, w: w, N: s.positions, C: s.inChannels, OC: c.patch)
    } else {
      Matmul.weightGradient(dw: dw, dout: cols, inp: inp, N: s.positions, C: s.inChannels, OC: c.patch)
    }
  }
}
