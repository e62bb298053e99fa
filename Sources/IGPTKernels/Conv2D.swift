/// 2-D convolution of NHWC images through im2col and sgemm, forward and backward.
///
/// Weights are stored (K, OC) with K = kernel * kernel * IC ordered (ky, kx, ic), so that
/// out (N, OC) = cols (N, K) @ w + b, N = batch * outHeight * outWidth: the convolution is a
/// dense layer over patches, and its backward is `Matmul.backward` followed by col2im.
public enum Conv2D {
  /// The geometry of one convolution: input (batch, height, width, inChannels), a square
  /// kernel, one stride and one zero padding for both axes.
  public struct Shape: Sendable, Equatable, Codable {
    public var batch, height, width, inChannels, outChannels, kernel, stride, padding: Int

    public init(batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
      self.batch = batch; self.height = height; self.width = width; self.inChannels = inChannels
      self.outChannels = outChannels; self.kernel = kernel; self.stride = stride; self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Values in one patch (a row of cols): kernel * kernel * inChannels.
    public var patch: Int { kernel * kernel * inChannels }
    /// Output positions (rows of cols): batch * outHeight * outWidth.
    public var positions: Int { batch * outHeight * outWidth }
    public var inputCount: Int { batch * height * width * inChannels }
    public var outputCount: Int { positions * outChannels }
    public var weightCount: Int { patch * outChannels }
    /// A 1x1 convolution of stride 1 needs no im2col: its input already is cols.
    public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    /// Floats of im2col scratch one call needs (0 for a pointwise convolution).
    public var colsCount: Int { isPointwise ? 0 : positions * patch }
    /// Multiply-adds of the forward product.
    public var macs: Int { positions * patch * outChannels }

    /// The same convolution over another number of images.
    public func with(batch b: Int) -> Shape {
      var s = self
      s.batch = b
      return s
    }
  }

  /// out (N, OC) = im2col(inp) @ w (K, OC) + b (OC). `cols` (colsCount) is scratch.
  public static func forward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    b: UnsafePointer<Float>?, cols: UnsafeMutablePointer<Float>, _ s: Shape
  ) {
    let patches = s.isPointwise ? inp : UnsafePointer(cols)
    if !s.isPointwise { im2col(cols: cols, inp: inp, s) }
    Matmul.forward(out: out, inp: patches, w: w, N: s.positions, C: s.patch, OC: s.outChannels)
    if let b { Bias.forward(out: out, b: b, N: s.positions, C: s.outChannels) }
  }

  /// dinp (overwritten; nil for a first layer), dw (K, OC) += cols^T @ dout, db += colsum(dout).
  /// `cols` and `dcols` (colsCount each) are scratch; cols is rebuilt from inp, not kept.
  public static func backward(
    dinp: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    cols: UnsafeMutablePointer<Float>, dcols: UnsafeMutablePointer<Float>, _ s: Shape
  ) {
    if let db { Bias.backward(db: db, dout: dout, N: s.positions, C: s.outChannels) }
    let patches = s.isPointwise ? inp : UnsafePointer(cols)
    if !s.isPointwise { im2col(cols: cols, inp: inp, s) }
    guard let dinp else {
      Matmul.weightGradient(dw: dw, dout: dout, inp: patches, N: s.positions, C: s.patch, OC: s.outChannels)
      return
    }
    let dpatches = s.isPointwise ? dinp : dcols
    Matmul.backward(dinp: dpatches, dw: dw, dout: dout, inp: patches, w: w, N: s.positions, C: s.patch, OC: s.outChannels)
    if !s.isPointwise { col2im(out: dinp, cols: dcols, s) }
  }

  /// cols (N, K): row n = output position (image, oy, ox), column (ky, kx, ic) = the input pixel
  /// under that kernel tap, 0 in the padding. Threads split the images.
  public static func im2col(cols: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, _ s: Shape) {
    let (H, W, C, k) = (s.height, s.width, s.inChannels, s.kernel)
    let (OH, OW, K) = (s.outHeight, s.outWidth, s.patch)
    Parallel.forChunks(s.batch) { _, images in
      for img in images {
        let src = inp + img * H * W * C
        for oy in 0..<OH {
          for ox in 0..<OW {
            var row = cols + ((img * OH + oy) * OW + ox) * K
            for ky in 0..<k {
              let y = oy * s.stride - s.padding + ky
              for kx in 0..<k {
                let x = ox * s.stride - s.padding + kx
                if y >= 0 && y < H && x >= 0 && x < W {
                  row.update(from: src + (y * W + x) * C, count: C)
                } else {
                  row.update(repeating: 0, count: C)
                }
                row += C
              }
            }
          }
        }
      }
    }
  }

  /// The adjoint of im2col: out (batch, H, W, C) = the sum, for every pixel, of the cols entries
  /// that read it (overwritten first). Each image's sum runs in one fixed order.
  public static func col2im(out: UnsafeMutablePointer<Float>, cols: UnsafePointer<Float>, _ s: Shape) {
    let (H, W, C, k) = (s.height, s.width, s.inChannels, s.kernel)
    let (OH, OW, K) = (s.outHeight, s.outWidth, s.patch)
    Parallel.forChunks(s.batch) { _, images in
      for img in images {
        let dst = out + img * H * W * C
        dst.update(repeating: 0, count: H * W * C)
        for oy in 0..<OH {
          for ox in 0..<OW {
            var row = cols + ((img * OH + oy) * OW + ox) * K
            for ky in 0..<k {
              let y = oy * s.stride - s.padding + ky
              for kx in 0..<k {
                let x = ox * s.stride - s.padding + kx
                if y >= 0 && y < H && x >= 0 && x < W {
                  let p = dst + (y * W + x) * C
                  for c in 0..<C { p[c] += row[c] }
                }
                row += C
              }
            }
          }
        }
      }
    }
  }
}
