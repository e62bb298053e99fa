import CImage
import CZlib
import Foundation

/// Writes small datasets in every format igpt reads, for tests.
public enum Fixtures {
  /// A fresh empty directory under the system temporary directory.
  public static func directory(_ name: String) -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("igpt-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// gzip-compressed bytes.
  public static func gzip(_ data: Data) -> Data {
    var stream = z_stream()
    deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    defer { deflateEnd(&stream) }
    var out = [UInt8](repeating: 0, count: data.count + 1024)
    var input = [UInt8](data)
    input.withUnsafeMutableBufferPointer { inp in
      out.withUnsafeMutableBufferPointer { o in
        stream.next_in = inp.baseAddress
        stream.avail_in = uInt(inp.count)
        stream.next_out = o.baseAddress
        stream.avail_out = uInt(o.count)
        deflate(&stream, Z_FINISH)
      }
    }
    return Data(out[0..<Int(stream.total_out)])
  }

  /// An IDX file of unsigned bytes with the given dimensions.
  public static func idx(dims: [Int], bytes: [UInt8], magicType: UInt8 = 0x08) -> Data {
    var d = Data([0, 0, magicType, UInt8(dims.count)])
    for v in dims { d.append(contentsOf: [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)]) }
    d.append(contentsOf: bytes)
    return d
  }

  /// Deterministic pseudo-random bytes.
  public static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<n).map { _ in
      s = s &* 6364136223846793005 &+ 1442695040888963407
      return UInt8(truncatingIfNeeded: s >> 33)
    }
  }

  /// An MNIST-layout directory: train (n) and t10k (nTest) images of side x side, labels i % 10.
  @discardableResult
  public static func idxDataset(at dir: String, n: Int, nTest: Int, side: Int, gzipped: Bool) -> (train: [UInt8], test: [UInt8]) {
    let train = bytes(n * side * side, seed: 1), test = bytes(nTest * side * side, seed: 2)
    func put(_ name: String, _ data: Data) {
      let file = (dir as NSString).appendingPathComponent(name + (gzipped ? ".gz" : ""))
      FileManager.default.createFile(atPath: file, contents: gzipped ? gzip(data) : data)
    }
    put("train-images-idx3-ubyte", idx(dims: [n, side, side], bytes: train))
    put("train-labels-idx1-ubyte", idx(dims: [n], bytes: (0..<n).map { UInt8($0 % 10) }))
    put("t10k-images-idx3-ubyte", idx(dims: [nTest, side, side], bytes: test))
    put("t10k-labels-idx1-ubyte", idx(dims: [nTest], bytes: (0..<nTest).map { UInt8($0 % 10) }))
    return (train, test)
  }

  /// A CIFAR record file: label byte(s) then R, G, B planes of 32x32.
  public static func cifarBatch(labels: [[UInt8]], seed: UInt64) -> (data: Data, planes: [UInt8]) {
    var d = Data()
    let planes = bytes(labels.count * 3072, seed: seed)
    for (i, l) in labels.enumerated() {
      d.append(contentsOf: l)
      d.append(contentsOf: planes[(i * 3072)..<((i + 1) * 3072)])
    }
    return (d, planes)
  }

  /// Writes a PNG.
  public static func png(_ path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) {
    _ = cimage_write_png(path, Int32(width), Int32(height), Int32(channels), pixels)
  }

  /// A folder dataset: classes as subfolders (or flat when classes is empty), `perClass` images
  /// each of side x side RGB, whose pixels are drawn around `colors` (so a palette can recover them).
  public static func folderDataset(at dir: String, classes: [String], perClass: Int, side: Int,
                                   colors: [[UInt8]] = [[230, 20, 20], [20, 200, 30], [30, 40, 220]]) {
    let names = classes.isEmpty ? [""] : classes
    var k = 0
    for (ci, name) in names.enumerated() {
      let sub = name.isEmpty ? dir : (dir as NSString).appendingPathComponent(name)
      try? FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
      for i in 0..<perClass {
        let noise = bytes(side * side, seed: UInt64(100 + ci * 1000 + i))
        var px = [UInt8](repeating: 0, count: side * side * 3)
        for p in 0..<(side * side) {
          let c = colors[(p + i + ci) % colors.count]
          for ch in 0..<3 { px[p * 3 + ch] = UInt8(max(0, min(255, Int(c[ch]) + Int(noise[p] % 9) - 4))) }
        }
        png((sub as NSString).appendingPathComponent(String(format: "%05d.png", k)), width: side, height: side, channels: 3, pixels: px)
        k += 1
      }
    }
  }
}
