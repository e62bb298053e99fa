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
  public static func cells(store: TokenStore, split name: String, count: Int) throws -> ([Cell], String?) {
    let split = try store.split(name)
    let n = min(count, split.count)
    let m = store.manifest
    var cells: [Cell] = []
    for i in 0..<n {
      let tokens = try split.tokens(i).map { UInt16($0) }
      cells.append(Cell(original: nil, quantised: Quantizer.decode(tokens, palette: store.palette)))
    }
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
          let floats = Resize.images(one, to: m.resolution, crop: m.crop)
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

  /// Lays cells out (original | quantised pairs, `columns` pairs per row), upscaled to at least
  /// 64 px, and writes a PNG atomically.
  public static func write(_ cells: [Cell], resolution R: Int, channels c: Int, columns: Int = 8, to path: String) throws {
    guard !cells.isEmpty else { throw DataError.file(path, "nothing to draw (the split is empty)") }
    let scale = max(1, (64 + R - 1) / R)
    let side = R * scale, gap = 2, pairGap = 8
    let pairs = min(columns, cells.count)
    let rows = (cells.count + pairs - 1) / pairs
    let pairWidth = 2 * side + gap
    let W = pairs * pairWidth + (pairs + 1) * pairGap
    let H = rows * side + (rows + 1) * pairGap
    var img = [UInt8](repeating: 255, count: W * H * c)
    func blit(_ px: [UInt8], x0: Int, y0: Int) {
      for y in 0..<side {
        for x in 0..<side {
          let s = ((y / scale) * R + x / scale) * c
          let d = ((y0 + y) * W + x0 + x) * c
          for ch in 0..<c { img[d + ch] = px[s + ch] }
        }
      }
    }
    for (i, cell) in cells.enumerated() {
      let x0 = pairGap + (i % pairs) * (pairWidth + pairGap)
      let y0 = pairGap + (i / pairs) * (side + pairGap)
      if let o = cell.original { blit(o, x0: x0, y0: y0) } else {
        for y in 0..<side { for x in 0..<side { for ch in 0..<c { img[((y0 + y) * W + x0 + x) * c + ch] = 200 } } }
      }
      blit(cell.quantised, x0: x0 + side + gap, y0: y0)
    }
    let dir = (path as NSString).deletingLastPathComponent
    let tmp = ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
    guard cimage_write_png(tmp, Int32(W), Int32(H), Int32(c), img) != 0 else {
      throw DataError.file(path, "cannot write PNG")
    }
    guard rename(tmp, path) == 0 else {
      unlink(tmp)
      throw DataError.file(path, "cannot move the PNG into place (\(String(cString: strerror(errno))))")
    }
  }
}
