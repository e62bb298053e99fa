import CImage
import Foundation

/// Builds a PNG grid of images from a token store: each quantised image beside its original
/// (resized the same way, before quantisation), to see what the palette does.
public enum PreviewGrid {
  /// Cells of (original?, quantised) pixel bytes at resolution R with c channels.
  public struct Cell {
    public var original: [UInt8]?
    public var quantised: [UInt8]
  }

  /// The first `count` images of a split, decoded, with originals when the source is readable.
  /// Returns the cells and, if the originals could not be read, why.
  /// `decoder`: the store's (`TokenDecoder`); originals are resized to its resolution.
  public static func cells(store: TokenStore, split name: String, count: Int, decoder: TokenDecoder) throws -> ([Cell], String?) {
    let split = try store.split(name)
    let n = min(count, split.count)
    let m = store.manifest
    var cells: [Cell] = []
    for i in 0..<n { cells.append(Cell(original: nil, quantised: decoder.bytes(try split.tokens(i)))) }
    var note: String?
    do {
      let source = try DatasetLoader.load(m.source.dataset, format: DatasetLoader.Format(rawValue: m.source.format == "idx" ? "idx" : m.source.format.hasPrefix("cifar") ? "cifar" : "folder"))
      let from = m.splits[name]?.sourceSplit ?? name
      let set: ImageSet? = from == "train" ? source.train : from == "test" ? source.test : source.val
      if let set {
        for i in 0..<n {
          let idx = try split.sourceIndex(i)
          guard idx < set.count else { throw DataError("source index \(idx) out of range") }
          let one = ImageSet(width: set.width, height: set.height, channels: set.channels,
                             pixels: Array(set.pixels[(idx * set.bytesPerImage)..<((idx + 1) * set.bytesPerImage)]),
                             labels: [])
          let floats = Resize.images(one, to: decoder.resolution, crop: m.crop)
          cells[i].original = floats.map { UInt8(max(0, min(255, (127.5 * ($0 + 1)).rounded()))) }
        }
      } else {
        note = "source has no \(from) split"
      }
    } catch {
      note = "originals unavailable (\(error))"
    }
    return (cells, note)
  }

  /// Writes cells as original | quantised pairs (a grey square where the original is missing).
  public static func write(_ cells: [Cell], resolution R: Int, channels c: Int, columns: Int = 8, to path: String) throws {
    let blank = [UInt8](repeating: 200, count: R * R * c)
    try ImageGrid.write(groups: cells.map { [$0.original ?? blank, $0.quantised] }, resolution: R, channels: c,
                        columns: columns, to: path)
  }
}
