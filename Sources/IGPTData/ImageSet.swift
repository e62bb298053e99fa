/// Images of one size as raw bytes, with optional class labels: what every reader produces.
public struct ImageSet: Sendable {
  public var width: Int
  public var height: Int
  /// 1 (grey) or 3 (RGB).
  public var channels: Int
  /// count * height * width * channels bytes, row-major, channels interleaved.
  public var pixels: [UInt8]
  /// One label per image, or empty when the source has none.
  public var labels: [Int32]

  public init(width: Int, height: Int, channels: Int, pixels: [UInt8], labels: [Int32]) {
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = pixels
    self.labels = labels
  }

  public var count: Int { width * height * channels == 0 ? 0 : pixels.count / (width * height * channels) }
  public var bytesPerImage: Int { width * height * channels }
}

/// A dataset as read from its source: the splits it ships with, and its class names.
public struct SourceDataset: Sendable {
  /// The format that was read ("idx", "cifar10", "cifar100", "folder").
  public var format: String
  /// Where it was read from.
  public var source: String
  public var train: ImageSet
  /// The official test split, if the source has one.
  public var test: ImageSet?
  /// A validation split shipped by the source (a `val/` folder), if any.
  public var val: ImageSet?
  public var classNames: [String]
}
