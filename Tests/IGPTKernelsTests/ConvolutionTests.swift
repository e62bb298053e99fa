import Testing
@testable import IGPTKernels

/// Convolution, transposed convolution, bias and ReLU: forward against a direct loop over the
/// definition, backward against central differences (scalar = sum(out * dout)).
@Suite struct ConvolutionTests {
  init() {
    Parallel.threads = 2
    BLAS.setThreads(1)
  }

  /// The definition, term by term in Double: out[b, oy, ox, oc] = bias + sum over taps inside the image.
  static func directConv(_ x: [Float], _ w: [Float], _ bias: [Float], _ s: Conv2D.Shape) -> [Float] {
    var out = [Float](repeating: 0, count: s.outputCount)
    for b in 0..<s.batch {
      for oy in 0..<s.outHeight {
        for ox in 0..<s.outWidth {
          for oc in 0..<s.outChannels {
            var acc = Double(bias[oc])
            for ky in 0..<s.kernel {
              for kx in 0..<s.kernel {
                let y = oy * s.stride - s.padding + ky, xx = ox * s.stride - s.padding + kx
                guard y >= 0, y < s.height, xx >= 0, xx < s.width else { continue }
                for ic in 0..<s.inChannels {
                  acc += Double(x[((b * s.height + y) * s.width + xx) * s.inChannels + ic])
                    * Double(w[((ky * s.kernel + kx) * s.inChannels + ic) * s.outChannels + oc])
                }
              }
            }
            out[((b * s.outHeight + oy) * s.outWidth + ox) * s.outChannels + oc] = Float(acc)
          }
        }
      }
    }
    return out
  }

  /// The transposed convolution by its definition: each input pixel spreads w over the output.
  static func directConvTranspose(_ x: [Float], _ w: [Float], _ bias: [Float], _ s: ConvTranspose2D.Shape) -> [Float] {
    var acc = [Double](repeating: 0, count: s.outputCount)
    let OC = s.outChannels
    for b in 0..<s.batch {
      for iy in 0..<s.height {
        for ix in 0..<s.width {
          for ky in 0..<s.kernel {
            for kx in 0..<s.kernel {
              let y = iy * s.stride - s.padding + ky, xx = ix * s.stride - s.padding + kx
              guard y >= 0, y < s.outHeight, xx >= 0, xx < s.outWidth else { continue }
              for ic in 0..<s.inChannels {
                let v = Double(x[((b * s.height + iy) * s.width + ix) * s.inChannels + ic])
                for oc in 0..<OC {
                  acc[((b * s.outHeight + y) * s.outWidth + xx) * OC + oc] += v * Double(w[ic * s.conv.patch + (ky * s.kernel + kx) * OC + oc])
                }
              }
            }
          }
        }
      }
    }
    return acc.indices.map { Float(acc[$0] + Double(bias[$0 % OC])) }
  }

  static func conv(_ x: [Float], _ w: [Float], _ b: [Float], _ s: Conv2D.Shape) -> [Float] {
    var out = [Float](repeating: 0, count: s.outputCount), cols = [Float](repeating: 0, count: max(1, s.colsCount))
    Conv2D.forward(out: &out, inp: x, w: w, b: b, cols: &cols, s)
    return out
  }

  static func convTranspose(_ x: [Float], _ w: [Float], _ b: [Float], _ s: ConvTranspose2D.Shape) -> [Float] {
    var out = [Float](repeating: 0, count: s.outputCount), cols = [Float](repeating: 0, count: s.colsCount)
    ConvTranspose2D.forward(out: &out, inp: x, w: w, b: b, cols: &cols, s)
    return out
  }

  static let convShapes: [Conv2D.Shape] = [
    .init(batch: 2, height: 8, width: 8, inChannels: 3, outChannels: 5, kernel: 4, stride: 2, padding: 1),
    .init(batch: 3, height: 5, width: 6, inChannels: 4, outChannels: 7, kernel: 3, stride: 1, padding: 1),
    .init(batch: 2, height: 4, width: 4, inChannels: 6, outChannels: 3, kernel: 1),
    .init(batch: 1, height: 7, width: 5, inChannels: 2, outChannels: 17, kernel: 3, stride: 2, padding: 0),
  ]

  @Test(arguments: convShapes) func convolutionIsItsDefinition(_ s: Conv2D.Shape) {
    var r = Rand(11)
    let x = r.normal(s.inputCount), w = r.normal(s.weightCount, std: 0.3), b = r.normal(s.outChannels)
    let got = Self.conv(x, w, b, s), want = Self.directConv(x, w, b, s)
    #expect(zip(got, want).map { abs($0 - $1) }.max()! < 1e-4)
  }

  @Test(arguments: convShapes) func convolutionBackwardIsCentralDifferences(_ s: Conv2D.Shape) {
    var r = Rand(12)
    var x = r.normal(s.inputCount), w = r.normal(s.weightCount, std: 0.3), b = r.normal(s.outChannels)
    let dout = r.normal(s.outputCount)
    var dx = [Float](repeating: 0, count: s.inputCount), dw = [Float](repeating: 0.5, count: s.weightCount)
    var db = [Float](repeating: 0.25, count: s.outChannels)
    var cols = [Float](repeating: 0, count: max(1, s.colsCount)), dcols = cols
    Conv2D.backward(dinp: &dx, dw: &dw, db: &db, dout: dout, inp: x, w: w, cols: &cols, dcols: &dcols, s)
    // dw and db accumulate onto what was there
    dw = dw.map { $0 - 0.5 }
    db = db.map { $0 - 0.25 }
    let (xs, ws, bs) = (x, w, b)
    #expect(worstGradientError(x: &x, analytic: dx) { weightedSum(Self.conv($0, ws, bs, s), dout) } < 1e-2)
    #expect(worstGradientError(x: &w, analytic: dw) { weightedSum(Self.conv(xs, $0, bs, s), dout) } < 1e-2)
    #expect(worstGradientError(x: &b, analytic: db) { weightedSum(Self.conv(xs, ws, $0, s), dout) } < 1e-2)
    // without dinp (a first layer): the same weight gradient
    var dw2 = [Float](repeating: 0, count: s.weightCount), db2 = [Float](repeating: 0, count: s.outChannels)
    Conv2D.backward(dinp: nil, dw: &dw2, db: &db2, dout: dout, inp: xs, w: ws, cols: &cols, dcols: &dcols, s)
    #expect(zip(dw2, dw).map { abs($0 - $1) }.max()! < 1e-4)
  }

  static let transposeShapes: [ConvTranspose2D.Shape] = [
    .init(batch: 2, height: 4, width: 4, inChannels: 5, outChannels: 3, kernel: 4, stride: 2, padding: 1),
    .init(batch: 1, height: 3, width: 5, inChannels: 4, outChannels: 6, kernel: 3, stride: 1, padding: 1),
    .init(batch: 2, height: 3, width: 3, inChannels: 2, outChannels: 17, kernel: 3, stride: 2, padding: 0),
  ]

  @Test(arguments: transposeShapes) func transposedConvolutionIsItsDefinition(_ s: ConvTranspose2D.Shape) {
    var r = Rand(13)
    let x = r.normal(s.inputCount), w = r.normal(s.weightCount, std: 0.3), b = r.normal(s.outChannels)
    let got = Self.convTranspose(x, w, b, s), want = Self.directConvTranspose(x, w, b, s)
    #expect(s.outHeight == (s.height - 1) * s.stride - 2 * s.padding + s.kernel)
    #expect(zip(got, want).map { abs($0 - $1) }.max()! < 1e-4)
  }

  @Test(arguments: transposeShapes) func transposedConvolutionBackwardIsCentralDifferences(_ s: ConvTranspose2D.Shape) {
    var r = Rand(14)
    var x = r.normal(s.inputCount), w = r.normal(s.weightCount, std: 0.3), b = r.normal(s.outChannels)
    let dout = r.normal(s.outputCount)
    var dx = [Float](repeating: 0, count: s.inputCount), dw = [Float](repeating: 0, count: s.weightCount)
    var db = [Float](repeating: 0, count: s.outChannels), cols = [Float](repeating: 0, count: s.colsCount)
    ConvTranspose2D.backward(dinp: &dx, dw: &dw, db: &db, dout: dout, inp: x, w: w, cols: &cols, s)
    let (xs, ws, bs) = (x, w, b)
    #expect(worstGradientError(x: &x, analytic: dx) { weightedSum(Self.convTranspose($0, ws, bs, s), dout) } < 1e-2)
    #expect(worstGradientError(x: &w, analytic: dw) { weightedSum(Self.convTranspose(xs, $0, bs, s), dout) } < 1e-2)
    #expect(worstGradientError(x: &b, analytic: db) { weightedSum(Self.convTranspose(xs, ws, $0, s), dout) } < 1e-2)
  }

  /// col2im is im2col's adjoint: <im2col(x), c> = <x, col2im(c)> for any x and c.
  @Test func col2imIsTheAdjointOfIm2col() {
    let s = Conv2D.Shape(batch: 2, height: 6, width: 5, inChannels: 3, outChannels: 1, kernel: 3, stride: 2, padding: 1)
    var r = Rand(15)
    let x = r.normal(s.inputCount), c = r.normal(s.colsCount)
    var cols = [Float](repeating: 0, count: s.colsCount), back = [Float](repeating: 7, count: s.inputCount)
    Conv2D.im2col(cols: &cols, inp: x, s)
    Conv2D.col2im(out: &back, cols: c, s)
    #expect(abs(weightedSum(cols, c) - weightedSum(x, back)) < 1e-3)
  }

  @Test func reluAndItsGradient() {
    let x: [Float] = [-2, -0.5, 0, 0.25, 3, -1e-8, 1e-8]
    var out = [Float](repeating: 9, count: x.count)
    ReLU.forward(out: &out, inp: x, N: x.count)
    #expect(out == [0, 0, 0, 0.25, 3, 0, 1e-8])
    var dx = [Float](repeating: 9, count: x.count)
    ReLU.backward(dinp: &dx, dout: [1, 2, 3, 4, 5, 6, 7], out: out, N: x.count)
    #expect(dx == [0, 0, 0, 4, 5, 0, 7])
  }

  /// The bias gradient's bytes do not depend on the thread count (columns split, rows in order).
  @Test func biasGradientIsTheSameOnOneThread() {
    var r = Rand(16)
    let N = 300, C = 40
    let dout = r.normal(N * C)
    var two = [Float](repeating: 0, count: C), one = two
    Bias.backward(db: &two, dout: dout, N: N, C: C)
    Parallel.serially { Bias.backward(db: &one, dout: dout, N: N, C: C) }
    #expect(one == two)
  }
}
