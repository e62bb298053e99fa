import IGPTKernels

extension VQVAE {
  /// Lays out the parameter slab while it builds the two networks: each layer's weight, then
  /// its bias, in the order the layers run (encoder, then decoder).
  struct Builder {
    var tensors: [Tensor] = []
    var count = 0

    mutating func add(_ name: String, _ shape: [Int], fanIn: Int) -> Int {
      tensors.append(Tensor(name: name, shape: shape, offset: count, fanIn: fanIn))
      count += shape.reduce(1, *)
      return tensors.last!.offset
    }

    mutating func conv(_ net: inout ConvNetwork, _ name: String, out: Int, kernel k: Int, stride: Int = 1, padding: Int = 0) {
      let (h, w, c) = net.outputGeometry
      let s = Conv2D.Shape(batch: 1, height: h, width: w, inChannels: c, outChannels: out, kernel: k, stride: stride, padding: padding)
      let weight = add(name + ".weight", [k, k, c, out], fanIn: k * k * c)
      let bias = add(name + ".bias", [out], fanIn: k * k * c)
      net.append(.conv(s), weight: weight, bias: bias)
    }

    mutating func convTranspose(_ net: inout ConvNetwork, _ name: String, out: Int, kernel k: Int, stride: Int, padding: Int) {
      let (h, w, c) = net.outputGeometry
      let s = ConvTranspose2D.Shape(batch: 1, height: h, width: w, inChannels: c, outChannels: out, kernel: k, stride: stride, padding: padding)
      let weight = add(name + ".weight", [c, k, k, out], fanIn: k * k * c)
      let bias = add(name + ".bias", [out], fanIn: k * k * c)
      net.append(.convTranspose(s), weight: weight, bias: bias)
    }

    /// residualLayers blocks x + conv1x1(relu(conv3x3(relu(x)))), then a ReLU.
    mutating func residualStack(_ net: inout ConvNetwork, _ name: String, _ c: VQVAEConfig) {
      for l in 0..<c.residualLayers {
        let x = net.output
        net.append(.relu)
        conv(&net, "\(name).\(l).conv3", out: c.residualHiddens, kernel: 3, padding: 1)
        net.append(.relu)
        conv(&net, "\(name).\(l).conv1", out: c.hiddens, kernel: 1)
        net.append(.add(other: x))
      }
      net.append(.relu)
    }

    /// Strided 4x4 convolutions down to the grid (hiddens / 2 wide but the last), a 3x3
    /// convolution, the residual stack and the 1x1 projection to the embedding.
    mutating func encoder(_ c: VQVAEConfig) -> ConvNetwork {
      var net = ConvNetwork(height: c.resolution, width: c.resolution, channels: c.channels)
      for i in 0..<c.strided {
        conv(&net, "encoder.down\(i)", out: i == c.strided - 1 ? c.hiddens : c.hiddens / 2, kernel: 4, stride: 2, padding: 1)
        net.append(.relu)
      }
      conv(&net, "encoder.conv", out: c.hiddens, kernel: 3, padding: 1)
      residualStack(&net, "encoder.res", c)
      conv(&net, "encoder.pre_vq", out: c.embeddingDim, kernel: 1)
      return net
    }

    /// A 3x3 convolution from the codes, the residual stack, and transposed 4x4 convolutions
    /// up to the image (hiddens / 2 wide but the last, which gives the channels).
    mutating func decoder(_ c: VQVAEConfig) -> ConvNetwork {
      var net = ConvNetwork(height: c.grid, width: c.grid, channels: c.embeddingDim)
      conv(&net, "decoder.conv", out: c.hiddens, kernel: 3, padding: 1)
      residualStack(&net, "decoder.res", c)
      for i in 0..<c.strided {
        let last = i == c.strided - 1
        convTranspose(&net, "decoder.up\(i)", out: last ? c.channels : c.hiddens / 2, kernel: 4, stride: 2, padding: 1)
        if !last { net.append(.relu) }
      }
      return net
    }
  }

  /// Activations, their gradients and scratch for one batch size.
  final class Workspace {
    let batch: Int
    let encActs: [UnsafeMutablePointer<Float>]
    let decActs: [UnsafeMutablePointer<Float>]
    let encGrads: ConvNetwork.GradientBuffers
    let decGrads: ConvNetwork.GradientBuffers
    let cols: UnsafeMutablePointer<Float>
    let distances: UnsafeMutablePointer<Float>
    private var owned: [UnsafeMutablePointer<Float>] = []

    init(_ m: VQVAE, batch B: Int) {
      batch = B
      var owned: [UnsafeMutablePointer<Float>] = []
      func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        p.initialize(repeating: 0, count: max(n, 1))
        owned.append(p)
        return p
      }
      encActs = m.encoder.sizes.map { buffer(B * $0) }
      decActs = m.decoder.sizes.map { buffer(B * $0) }
      let colsCount = B * max(m.encoder.colsPerImage, m.decoder.colsPerImage)
      cols = buffer(colsCount)
      let dcols = buffer(colsCount)
      let spare = buffer(B * max(m.encoder.sizes.max()!, m.decoder.sizes.max()!))
      encGrads = .init(dacts: m.encoder.sizes.map { buffer(B * $0) }, spare: spare, cols: cols, dcols: dcols)
      decGrads = .init(dacts: m.decoder.sizes.map { buffer(B * $0) }, spare: spare, cols: cols, dcols: dcols)
      distances = buffer(B * m.latentsPerImage * m.config.codes)
      self.owned = owned
    }

    deinit { for p in owned { p.deallocate() } }
  }
}
