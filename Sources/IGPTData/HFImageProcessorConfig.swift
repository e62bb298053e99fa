import Foundation

/// The `preprocessor_config.json` of a Hugging Face ImageGPT directory: the palette as
/// `clusters` (colours in [-1, 1], (V, 3)) and the resolution, so `ImageGPTImageProcessor`
/// quantises an image to the tokens `igpt prepare` gives it. Grey palettes are written as
/// (V, 3) with equal channels (HF's processor works in RGB) and read back as grey.
public struct HFImageProcessorConfig: Codable, Equatable, Sendable {
  public var imageProcessorType = "ImageGPTImageProcessor"
  public var clusters: [[Float]]
  public var doResize = true
  public var size: [String: Int]
  /// PIL's bilinear (HF's default); igpt box-averages, so compare on images already at `size`.
  public var resample = 2
  public var doNormalize = true
  public var doColorQuantize = true

  enum CodingKeys: String, CodingKey {
    case imageProcessorType = "image_processor_type", clusters, doResize = "do_resize", size, resample
    case doNormalize = "do_normalize", doColorQuantize = "do_color_quantize"
  }

  public init(palette: Palette, resolution: Int) {
    let c = palette.channels
    clusters = (0..<palette.count).map { i in
      c == 3 ? Array(palette.colors[(3 * i)..<(3 * i + 3)]) : Array(repeating: palette.colors[i], count: 3)
    }
    size = ["height": resolution, "width": resolution]
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    imageProcessorType = try c.decodeIfPresent(String.self, forKey: .imageProcessorType) ?? "ImageGPTImageProcessor"
    clusters = try c.decode([[Float]].self, forKey: .clusters)
    doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? true
    size = try c.decodeIfPresent([String: Int].self, forKey: .size) ?? ["height": 256, "width": 256]
    resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? 2
    doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? true
    doColorQuantize = try c.decodeIfPresent(Bool.self, forKey: .doColorQuantize) ?? true
  }

  /// The palette: grey when every colour's three channels are equal, else RGB.
  public func palette(name: String) throws -> Palette {
    guard clusters.allSatisfy({ $0.count == 3 }) else { throw DataError.file(name, "clusters are not (V, 3)") }
    guard clusters.allSatisfy({ $0.allSatisfy { $0.isFinite && abs($0) <= 1.0001 } }) else {
      throw DataError.file(name, "cluster values must be finite and in [-1, 1]")
    }
    let grey = clusters.allSatisfy { $0[0] == $0[1] && $0[1] == $0[2] }
    do { return try Palette(colors: grey ? clusters.map { $0[0] } : clusters.flatMap { $0 }, channels: grey ? 1 : 3) } catch {
      throw DataError.file(name, "\(error)")
    }
  }

  /// Reads a preprocessor_config.json file.
  public static func load(_ path: String) throws -> HFImageProcessorConfig {
    guard let d = FileManager.default.contents(atPath: path) else { throw DataError.file(path, "cannot be read (missing or not a file)") }
    do { return try JSONDecoder().decode(HFImageProcessorConfig.self, from: d) } catch {
      throw DataError.file(path, "not an ImageGPT preprocessor config (\(error))")
    }
  }

  /// The JSON text, keys sorted.
  public func encoded() throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try e.encode(self)
  }
}
