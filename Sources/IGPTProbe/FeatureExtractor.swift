import Foundation
import IGPTData
import IGPTKernels
import IGPTModel

/// Features of a split's images at every layer, from forward passes only, batch by batch.
public struct FeatureExtractor {
  public let model: IGPT
  public var batch = 32
  /// BERT models: average the features over this many random masks (the paper's mask
  /// ensembling); AR models ignore it.
  public var masks = 1
  public var seed: UInt64 = 0
  /// The deepest layer wanted (default: all of them): the forward passes stop there, and
  /// `extract` returns layers 0...deepestLayer.
  public var deepestLayer: Int?

  public init(model: IGPT) { self.model = model }

  /// Per layer 0...deepestLayer (default L), the features of images `indices` of the split (rows in that order).
  public func extract(_ split: TokenSplit, indices: [Int], progress: (Int, Int) -> Void = { _, _ in }) throws -> [FeatureSet] {
    let T = split.sequenceLength, C = model.config.embd, L = min(deepestLayer ?? model.config.layers, model.config.layers)
    guard T == model.config.seq else { throw DataError("the store has \(T) tokens per image, the model \(model.config.seq)") }
    var layers = [[Float]](repeating: [Float](repeating: 0, count: indices.count * C), count: L + 1)
    let labels = try indices.map { Int(try split.label($0)) }
    let passes = model.config.objective == .bert ? max(1, masks) : 1
    var start = 0
    while start < indices.count {
      let chunk = Array(indices[start..<min(indices.count, start + batch)])
      var tokens = [Int32](repeating: 0, count: chunk.count * T)
      try tokens.withUnsafeMutableBufferPointer { t in
        for (i, idx) in chunk.enumerated() { try split.copyTokens(idx, into: t.baseAddress! + i * T) }
      }
      for pass in 0..<passes {
        let mask = model.config.objective == .bert ? Self.masks(seed: seed, split: split.name, images: chunk, pass: pass, T: T) : []
        let f = tokens.withUnsafeBufferPointer { t in
          mask.withUnsafeBufferPointer { m in
            model.allFeatures(tokens: t.baseAddress!, mask: mask.isEmpty ? nil : m.baseAddress, batch: chunk.count, through: L)
          }
        }
        for l in 0...L { Self.addPass(f[l], into: &layers[l], at: start * C) }
      }
      start += chunk.count
      progress(start, indices.count)
    }
    for l in 0...L { Self.finishMean(&layers[l], passes: passes) }
    return layers.map { FeatureSet(width: C, values: $0, labels: labels) }
  }

  /// BERT masks (count x T) for pass `pass` over images `images` of split `split`: each image's
  /// mask is seeded by (seed, split, image, pass) alone, so it is the same whichever batch or
  /// process (`probe run`, a cluster worker's task) computes it.
  public static func masks(seed: UInt64, split: String, images: [Int], pass: Int, T: Int) -> [UInt8] {
    var splitHash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a of the split's name
    for b in split.utf8 { splitHash = (splitHash ^ UInt64(b)) &* 0x100_0000_01B3 }
    var out: [UInt8] = []
    out.reserveCapacity(images.count * T)
    for image in images {
      var mix = SeededRandom(seed: seed ^ splitHash)
      mix = SeededRandom(seed: mix.next() ^ UInt64(image))
      var rng = SeededRandom(seed: mix.next() ^ UInt64(pass))
      out += BERTMask.draw(B: 1, T: T, rng: &rng)
    }
    return out
  }

  /// Adds one mask pass's features into the running sum at `offset` (passes in pass order).
  public static func addPass(_ f: [Float], into sum: inout [Float], at offset: Int) {
    for i in f.indices { sum[offset + i] += f[i] }
  }

  /// The mean over passes: the pass-order sum divided by their count (one rule for `probe run`
  /// and cluster jobs, so both give the same bytes).
  public static func finishMean(_ sum: inout [Float], passes: Int) {
    guard passes > 1 else { return }
    let n = Float(passes)
    for i in sum.indices { sum[i] /= n }
  }

  /// How the raw-pixel baseline's row describes its input: nil for palette pixels, the
  /// decoded images for a latent store.
  public static func pixelsInput(_ store: TokenStore) -> String? {
    store.palette == nil ? "images decoded by the store's VQ-VAE from their codes" : nil
  }

  /// The baseline's input: each image decoded from its tokens (palette colours at the store's
  /// resolution, de-quantised; a latent store's images as its VQ-VAE decodes them).
  public static func rawPixels(_ split: TokenSplit, indices: [Int], decoder: TokenDecoder) throws -> FeatureSet {
    let width = decoder.resolution * decoder.resolution * decoder.channels
    var values = [Float](repeating: 0, count: indices.count * width)
    for (i, idx) in indices.enumerated() {
      values.replaceSubrange((i * width)..<((i + 1) * width), with: decoder.floats(try split.tokens(idx)))
    }
    return FeatureSet(width: width, values: values, labels: try indices.map { Int(try split.label($0)) })
  }
}
