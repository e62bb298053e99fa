/// The manifest of a token store (manifest.json): what was prepared from what, and where each
/// split's shards are, with their sizes and checksums.
public struct TokenStoreManifest: Codable, Equatable, Sendable {
  public static let currentVersion = 1

  public struct Source: Codable, Equatable, Sendable {
    public var dataset: String
    public var format: String
    public var path: String
  }

  public struct Shard: Codable, Equatable, Sendable {
    public var file: String
    public var count: Int
    public var bytes: Int
    public var crc32: UInt32
  }

  public struct Split: Codable, Equatable, Sendable {
    public var count: Int
    /// The source split the images come from ("train" for a val split carved out of it).
    public var sourceSplit: String
    public var shards: [Shard]

    enum CodingKeys: String, CodingKey {
      case count, shards
      case sourceSplit = "source_split"
    }
  }

  public var formatVersion: Int
  public var createdBy: String
  public var source: Source
  public var resolution: Int
  public var channels: Int
  public var crop: Bool
  public var sequenceLength: Int
  /// Palette colours in [-1, 1], one array of `channels` values per token.
  public var palette: [[Float]]
  public var classes: [String]
  public var seed: UInt64
  public var valFraction: Double
  public var splits: [String: Split]

  enum CodingKeys: String, CodingKey {
    case source, resolution, channels, crop, palette, classes, seed, splits
    case formatVersion = "format_version"
    case createdBy = "created_by"
    case sequenceLength = "sequence_length"
    case valFraction = "val_fraction"
  }

  /// The palette as a `Palette`.
  public func makePalette() throws -> Palette {
    try Palette(colors: palette.flatMap { $0 }, channels: channels)
  }
}
