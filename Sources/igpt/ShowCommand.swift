import ArgumentParser
import Foundation
import IGPTVQVAE
import IGPTData

/// `igpt show`: quantised images beside their originals, as a PNG grid.
struct ShowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show",
    abstract: "Draw a split's first images, original beside quantised, into a PNG grid.",
    discussion: "Example: igpt show data/fmnist14 --split test --count 32 --out grid.png")

  @Argument(help: "A token store directory (from igpt prepare).") var store: String
  @Option(help: "Split: train, val or test.") var split = "train"
  @Option(help: "Images to draw.") var count = 32
  @Option(help: "Output PNG.") var out: String

  func validate() throws {
    if count < 1 { throw ValidationError("--count must be at least 1") }
  }

  func run() throws {
    let s = try TokenStore(path: store)
    let decoder = try VQVAETokenDecoder.forStore(s)
    let (cells, note) = try PreviewGrid.cells(store: s, split: split, count: count, decoder: decoder)
    if let note { FileHandle.standardError.write(Data("igpt show: warning: \(note)\n".utf8)) }
    try PreviewGrid.write(cells, resolution: decoder.resolution, channels: decoder.channels, to: out)
    print("wrote \(out): \(cells.count) images from \(split) (left original, right its tokens through \(decoder.description))")
  }
}
