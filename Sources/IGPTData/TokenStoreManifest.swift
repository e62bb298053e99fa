/// The manifest of a token store (manifest.json): what was prepared from what, how tokens map
/// back to images (its tokenizer), and where each split's shards are, with sizes and checksums.
///
/// Version 2 names the tokenizer; version 1 stores (palette only) still read.
public struct TokenStoreManifest: Codable, Equatable, Sendable {
  public static let currentVersion = 2
  public static let readableVersions = 1...2

  /// What turns images into this store's tokens, and tokens back into images.
  public struct Tokenizer: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case palette, vqvae }
    public var kind: Kind
    /// A VQ-VAE's codes (kind vqvae): the checkpoint that encoded the store.
    public var vqvae: VQVAEReference?

    public static let palette = Tokenizer(kind: .palette, vqvae: nil)
    public init(kind: Kind, vqvae: VQVAEReference?) {
      self.kind = kind
      self.vqvae = vqvae
    }
  }

  /// The VQ-VAE checkpoint a latent store was encoded with: where it is, the checksum of its
  /// weights (the decoder must be that one), and the shapes on both sides.
  public struct VQVAEReference: Codable, Equatable, Sendable {
    /// The checkpoint's step directory (absolute).
    public var checkpoint: String
    /// crc32 of its vqvae.safetensors.
    public var crc32: UInt32
    public var codes: Int
    /// Side of the latent grid (the store's resolution).
    public var grid: Int
    /// Side of the images it decodes to.
    public var imageResolution: Int

    enum CodingKeys: String, CodingKey {
      case checkpoint, crc32, codes, grid
      case imageResolution = "image_resolution"
    }

    public init(checkpoint: String, crc32: UInt32, codes: Int, grid: Int, imageResolution: Int) {
      self.checkpoint = checkpoint; self.crc32 = crc32; self.codes = codes; self.grid = grid; self.imageResolution = imageResolution
    }
  }

  public struct Source: Codable, Equatable, Sendable {
    public var dataset: String
    public var format: String
    public var path: String

    public init(dataset: String, format: String, path: String) {
      self.dataset = dataset; self.format = format; self.path = path
    }
  }

  public struct Shard: Codable, Equatable, Sendable {
    public var file: String
    public var count: Int
    public var bytes: Int
    public var crc32: UInt32

    public init(file: String, count: Int, bytes: Int, crc32: UInt32) {
      self.file = file; self.count = count; self.bytes = bytes; self.crc32 = crc32
    }
  }

  public struct Split: Codable, Equatable, Sendable {
    public var count: Int
    /// The source split the images come from ("train" for a val split carved out of it).
    public var sourceSplit: String
    public var shards: [Shard]

    public init(count: Int, sourceSplit: String, shards: [Shard]) {
      self.count = count; self.sourceSplit = sourceSplit; self.shards = shards
    }

    enum CodingKeys: String, CodingKey {
      case count, shards
      case sourceSplit = "source_split"
    }
  }

  public var formatVersion: Int
  public var createdBy: String
  public var source: Source
  /// Side of the token grid (sequence length = resolution^2): the image side for palette
  /// tokens, the latent grid's for VQ-VAE codes.
  public var resolution: Int
  /// Channels of the images the tokens stand for.
  public var channels: Int
  public var crop: Bool
  public var sequenceLength: Int
  /// Palette colours in [-1, 1], one array of `channels` values per token (empty for VQ-VAE codes).
  public var palette: [[Float]]
  /// nil in version 1 stores: a palette.
  public var tokenizer: Tokenizer?
  public var classes: [String]
  public var seed: UInt64
  public var valFraction: Double
  public var splits: [String: Split]

  enum CodingKeys: String, CodingKey {
    case source, resolution, channels, crop, palette, tokenizer, classes, seed, splits
    case formatVersion = "format_version"
    case createdBy = "created_by"
    case sequenceLength = "sequence_length"
    case valFraction = "val_fraction"
  }

  public init(formatVersion: Int, createdBy: String, source: Source, resolution: Int, channels: Int, crop: Bool, sequenceLength: Int,
              palette: [[Float]], tokenizer: Tokenizer?, classes: [String], seed: UInt64, valFraction: Double, splits: [String: Split]) {
    self.formatVersion = formatVersion; self.createdBy = createdBy; self.source = source; self.resolution = resolution
    self.channels = channels; self.crop = crop; self.sequenceLength = sequenceLength; self.palette = palette
    self.tokenizer = tokenizer; self.classes = classes; self.seed = seed; self.valFraction = valFraction; self.splits = splits
  }

  /// The tokenizer, explicit for every version.
  public var tokenKind: Tokenizer { tokenizer ?? .palette }

  /// Distinct tokens: palette colours or VQ-VAE codes.
  public var vocab: Int { tokenKind.vqvae?.codes ?? palette.count }

  /// Bytes per token in the shards.
  public var tokenBytes: Int { TokenShard.tokenBytes(vocab: vocab) }

  /// The palette as a `Palette` (nil for a latent store).
  public func makePalette() throws -> Palette? {
    tokenKind.kind == .palette ? try Palette(colors: palette.flatMap { $0 }, channels: channels) : nil
  }
}
