/// Turns a store's token sequences back into images: through its palette, or for a latent
/// store through the VQ-VAE decoder that made its codes (`VQVAETokenDecoder` builds that one).
/// The one decoding interface `show`, `sample`, `complete` and the raw-pixel baseline use.
public struct TokenDecoder: @unchecked Sendable {
  /// Side of the decoded images.
  public let resolution: Int
  public let channels: Int
  /// What the pixels are, for messages ("the palette's 16 colours", "a VQ-VAE's decoder").
  public let description: String
  /// One image's tokens to (resolution^2 * channels) values in [-1, 1].
  public let floats: ([Int32]) -> [Float]

  public init(resolution: Int, channels: Int, description: String, floats: @escaping ([Int32]) -> [Float]) {
    self.resolution = resolution
    self.channels = channels
    self.description = description
    self.floats = floats
  }

  /// Palette tokens: each token its colour.
  public static func palette(_ p: Palette, resolution: Int) -> TokenDecoder {
    TokenDecoder(resolution: resolution, channels: p.channels, description: "the palette's \(p.count) colours") { tokens in
      var out = [Float](repeating: 0, count: tokens.count * p.channels)
      for (i, t) in tokens.enumerated() {
        for ch in 0..<p.channels { out[i * p.channels + ch] = p.colors[Int(t) * p.channels + ch] }
      }
      return out
    }
  }

  /// One image's tokens as pixel bytes.
  public func bytes(_ tokens: [Int32]) -> [UInt8] {
    floats(tokens).map { UInt8(max(0, min(255, (127.5 * ($0 + 1)).rounded()))) }
  }
}
