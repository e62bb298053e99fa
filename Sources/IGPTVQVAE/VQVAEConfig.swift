/// The shape of a VQ-VAE (the architecture of van den Oord et al. 2017 and DeepMind's sonnet
/// example): strided 4x4 convolutions down by `downsample`, a 3x3 convolution, a residual
/// stack, a 1x1 projection to `embeddingDim`, the quantiser over `codes` codes, and the mirror
/// image up with transposed convolutions.
public struct VQVAEConfig: Codable, Equatable, Sendable {
  /// Side of the (square) input images.
  public var resolution: Int
  /// 1 (grey) or 3 (RGB).
  public var channels: Int
  public var hiddens: Int = 128
  public var residualHiddens: Int = 32
  public var residualLayers: Int = 2
  public var embeddingDim: Int = 64
  public var codes: Int = 512
  /// Input side / latent grid side: a power of two, one strided convolution per factor 2.
  public var downsample: Int = 4

  public init(resolution: Int, channels: Int, hiddens: Int = 128, residualHiddens: Int = 32, residualLayers: Int = 2,
              embeddingDim: Int = 64, codes: Int = 512, downsample: Int = 4) {
    self.resolution = resolution; self.channels = channels; self.hiddens = hiddens
    self.residualHiddens = residualHiddens; self.residualLayers = residualLayers
    self.embeddingDim = embeddingDim; self.codes = codes; self.downsample = downsample
  }

  enum CodingKeys: String, CodingKey {
    case resolution, channels, hiddens, codes, downsample
    case residualHiddens = "residual_hiddens"
    case residualLayers = "residual_layers"
    case embeddingDim = "embedding_dim"
  }

  /// Side of the latent grid.
  public var grid: Int { resolution / downsample }
  /// Strided (de)convolutions: log2(downsample).
  public var strided: Int { downsample.trailingZeroBitCount }

  /// What is wrong with this shape, if anything (one line).
  public var problem: String? {
    if !(1...1024).contains(resolution) { return "resolution must be 1-1024 (got \(resolution))" }
    if channels != 1 && channels != 3 { return "channels must be 1 or 3 (got \(channels))" }
    if downsample < 2 || downsample & (downsample - 1) != 0 { return "downsample must be a power of two, at least 2 (got \(downsample))" }
    if resolution % downsample != 0 { return "resolution \(resolution) is not a multiple of downsample \(downsample)" }
    if hiddens < 2 || hiddens % 2 != 0 { return "hiddens must be even and at least 2 (got \(hiddens))" }
    if residualHiddens < 1 || residualLayers < 0 || embeddingDim < 1 { return "residual_hiddens, embedding_dim must be positive, residual_layers not negative" }
    if !(2...65_536).contains(codes) { return "codes must be 2-65536 (got \(codes))" }
    return nil
  }
}
