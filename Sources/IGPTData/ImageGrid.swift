import CImage
import Foundation

/// Lays out groups of R x R images (each group side by side, e.g. original | quantised) in a
/// grid, upscaled to at least 64 px per image, and writes it as a PNG atomically.
public enum ImageGrid {
  /// The grid's pixels (H x W x c bytes).
  public static func render(groups: [[[UInt8]]], resolution R: Int, channels c: Int, columns: Int = 8) -> (pixels: [UInt8], width: Int, height: Int)? {
    guard let first = groups.first, !first.isEmpty else { return nil }
    let perGroup = first.count
    let scale = max(1, (64 + R - 1) / R)
    let side = R * scale, gap = 2, groupGap = 8
    let cols = min(columns, groups.count)
    let rows = (groups.count + cols - 1) / cols
    let groupWidth = perGroup * side + (perGroup - 1) * gap
    let W = cols * groupWidth + (cols + 1) * groupGap
    let H = rows * side + (rows + 1) * groupGap
    var img = [UInt8](repeating: 255, count: W * H * c)
    for (g, group) in groups.enumerated() {
      let gx = groupGap + (g % cols) * (groupWidth + groupGap)
      let gy = groupGap + (g / cols) * (side + groupGap)
      for (k, px) in group.enumerated() {
        let x0 = gx + k * (side + gap)
        for y in 0..<side {
          for x in 0..<side {
            let s = ((y / scale) * R + x / scale) * c
            let d = ((gy + y) * W + x0 + x) * c
            for ch in 0..<c { img[d + ch] = px[s + ch] }
          }
        }
      }
    }
    return (img, W, H)
  }

  public static func write(groups: [[[UInt8]]], resolution R: Int, channels c: Int, columns: Int = 8, to path: String) throws {
    guard let (img, W, H) = render(groups: groups, resolution: R, channels: c, columns: columns) else {
      throw DataError.file(path, "nothing to draw")
    }
    let dir = (path as NSString).deletingLastPathComponent
    let tmp = ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
    try Interruption.critical {  // a stop waits for the PNG and its rename (milliseconds)
      guard cimage_write_png(tmp, Int32(W), Int32(H), Int32(c), img) != 0 else {
        throw DataError.file(path, "cannot write PNG (does the directory exist?)")
      }
      guard rename(tmp, path) == 0 else {
        unlink(tmp)
        throw DataError.file(path, "cannot move the PNG into place (\(String(cString: strerror(errno))))")
      }
    }
  }

  /// The grid as PNG bytes, with its size.
  public static func png(groups: [[[UInt8]]], resolution R: Int, channels c: Int, columns: Int = 8) throws -> (data: Data, width: Int, height: Int) {
    guard let (_, W, H) = render(groups: groups, resolution: R, channels: c, columns: columns) else { throw DataError("nothing to draw") }
    let path = NSTemporaryDirectory() + "igpt-grid-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).png"
    defer { unlink(path) }
    try write(groups: groups, resolution: R, channels: c, columns: columns, to: path)
    guard let d = FileManager.default.contents(atPath: path) else { throw DataError.file(path, "cannot read back the PNG") }
    return (d, W, H)
  }
}
