import Foundation
import IGPTKernels
import IGPTModel
import Testing
@testable import IGPTData

@Suite struct PixelTests {
  init() { Parallel.threads = 2 }

  @Test func resizeIsTheBlockMeanWhenTheSizeDivides() {
    var px = [UInt8](repeating: 0, count: 6 * 6)
    for i in px.indices { px[i] = UInt8((i * 37) % 256) }
    let set = ImageSet(width: 6, height: 6, channels: 1, pixels: px, labels: [])
    for out in [1, 2, 3, 6] {
      let r = Resize.images(set, to: out, crop: false)
      let k = 6 / out
      for y in 0..<out {
        for x in 0..<out {
          var s = 0
          for dy in 0..<k { for dx in 0..<k { s += Int(px[(y * k + dy) * 6 + x * k + dx]) } }
          let mean = Double(s) / Double(k * k)
          #expect(abs(Double(r[y * out + x]) - (mean / 127.5 - 1)) < 1e-5)
        }
      }
    }
  }

  @Test func resizeKeepsAConstantImageConstantAndCropsTheCentre() {
    let set = ImageSet(width: 7, height: 5, channels: 3, pixels: [UInt8](repeating: 200, count: 105), labels: [])
    let r = Resize.images(set, to: 3, crop: false)
    #expect(r.allSatisfy { abs($0 - (200 / 127.5 - 1)) < 1e-5 })
    // crop: a 9x3 image whose middle 3x3 is white, the sides black
    var px = [UInt8](repeating: 0, count: 27)
    for y in 0..<3 { for x in 3..<6 { px[y * 9 + x] = 255 } }
    let wide = ImageSet(width: 9, height: 3, channels: 1, pixels: px, labels: [])
    #expect(Resize.images(wide, to: 3, crop: true).allSatisfy { $0 == 1 })
    #expect(Resize.centreSquare(width: 9, height: 3) == (3, 0, 3))
  }

  /// Three planted colour clusters with small noise: k-means with k = 3 finds them.
  @Test func kmeansRecoversPlantedClusters() throws {
    let centers: [[Float]] = [[0.8, -0.6, 0.1], [-0.7, 0.5, -0.2], [0.0, 0.0, 0.9]]
    var rng = SeededRandom(seed: 1)
    var px: [Float] = []
    for i in 0..<3000 {
      for ch in 0..<3 { px.append(centers[i % 3][ch] + Float(rng.normal() * 0.03)) }
    }
    let p = try Palette.kmeans(pixels: px, channels: 3, k: 3, seed: 4)
    for c in centers {
      let best = (0..<3).map { j in (0..<3).map { pow(p.colors[j * 3 + $0] - c[$0], 2) }.reduce(0, +) }.min()!
      #expect(best.squareRoot() < 0.01)
    }
  }

  @Test func kmeansIsDeterministicAndHandlesFewDistinctColours() throws {
    var rng = SeededRandom(seed: 2)
    let px = (0..<2000).map { _ in Float(rng.uniform() * 2 - 1) }
    let a = try Palette.kmeans(pixels: px, channels: 1, k: 16, seed: 7)
    let b = try Palette.kmeans(pixels: px, channels: 1, k: 16, seed: 7)
    #expect(a == b)
    // only 3 distinct values for 8 colours: empty clusters are refilled, nothing crashes
    let few = (0..<300).map { Float([-1, 0, 1][$0 % 3]) }
    let p = try Palette.kmeans(pixels: few, channels: 1, k: 8, seed: 1)
    #expect(p.count == 8)
    #expect(Set(Quantizer.nearest(few, palette: p)).count == 3)
    #expect(throws: DataError.self) { try Palette.kmeans(pixels: few, channels: 1, k: 1, seed: 1) }
  }

  @Test func quantiseAndDecodeRoundTrip() throws {
    let palette = try Palette(colors: [-1, -1, -1, 1, 1, 1, 0.2, -0.4, 0.6, -0.5, 0.5, 0], channels: 3)
    // pixels exactly on palette colours, in a known order
    let order: [UInt16] = [2, 0, 3, 1, 1, 2]
    let px = order.flatMap { Array(palette.colors[(Int($0) * 3)..<(Int($0) * 3 + 3)]) }
    #expect(Quantizer.nearest(px, palette: palette) == order)
    let bytes = Quantizer.decode(order, palette: palette)
    #expect(Array(bytes[0..<3]) == [153, 77, 204])  // round(127.5 * (c + 1))
    #expect(Array(bytes[3..<6]) == [0, 0, 0])
    // nearest by squared distance: a point closer to colour 3 than 2
    #expect(Quantizer.nearest([-0.4, 0.4, 0.05], palette: palette) == [3])
  }

  @Test func quantiseMatchesBruteForceForLargePalettes() throws {
    var rng = SeededRandom(seed: 9)
    let k = 300
    let palette = try Palette(colors: (0..<(k * 3)).map { _ in Float(rng.uniform() * 2 - 1) }, channels: 3)
    let px = (0..<(500 * 3)).map { _ in Float(rng.uniform() * 2 - 1) }
    let got = Quantizer.nearest(px, palette: palette)
    for i in 0..<500 {
      var best = 0, bestD = Float.infinity
      for j in 0..<k {
        var d: Float = 0
        for c in 0..<3 { d += (palette.colors[j * 3 + c] - px[i * 3 + c]) * (palette.colors[j * 3 + c] - px[i * 3 + c]) }
        if d < bestD { bestD = d; best = j }
      }
      #expect(Int(got[i]) == best)
    }
    #expect(palette.tokenBytes == 2)
  }

  @Test func npyPaletteRoundTripAndBadShapes() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("igpt-npy-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let palette = try Palette(colors: [0.5, -0.25, 1, -1, 0, 0.125], channels: 3)
    let f = dir.appendingPathComponent("p.npy").path
    try palette.npy().write(to: URL(fileURLWithPath: f))
    #expect(try Palette.load(npy: f) == palette)
    let bad = dir.appendingPathComponent("bad.npy").path
    try Npy.encode(float32: [0, 0, 0, 0, 0, 0], shape: [3, 2]).write(to: URL(fileURLWithPath: bad))
    #expect { try Palette.load(npy: bad) } throws: { e in "\(e)".contains(bad) && "\(e)".contains("shape") }
    let notNpy = dir.appendingPathComponent("x.npy").path
    try Data("hello".utf8).write(to: URL(fileURLWithPath: notNpy))
    #expect(throws: DataError.self) { try Palette.load(npy: notNpy) }
  }
}
