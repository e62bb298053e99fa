import Foundation

/// How well a VQ-VAE reconstructs a split: pixel MSE in [0, 1] units (reconstructions clamped to
/// [0, 1], as a PNG of them would be), PSNR, and how the codes are used over the whole split.
public struct VQVAEEvaluation: Codable, Equatable, Sendable {
  public var split: String
  public var images: Int
  public var mse: Double
  /// 10 log10(1 / mse).
  public var psnrDB: Double
  /// exp(entropy) of the code frequencies over every latent of the split.
  public var perplexity: Double
  /// Distinct codes used.
  public var codesUsed: Int

  enum CodingKeys: String, CodingKey {
    case split, images, mse, perplexity
    case psnrDB = "psnr_db"
    case codesUsed = "codes_used"
  }

  /// Encodes and decodes the first `count` images of `split` (all when nil), `batch` at a time.
  public static func measure(_ model: VQVAE, _ data: ImageSplits, split: String, count: Int?, batch: Int) throws -> VQVAEEvaluation {
    guard let all = data.images[split] else {
      throw VQVAEError("the dataset has no split '\(split)' (it has \(data.images.keys.sorted().joined(separator: ", ")))")
    }
    let n = min(count ?? Int.max, data.count(split)), per = data.floatsPerImage
    guard n > 0 else { throw VQVAEError("split '\(split)' has no images") }
    var counts = [Int](repeating: 0, count: model.config.codes)
    var squared = 0.0
    all.withUnsafeBufferPointer { src in
      for start in stride(from: 0, to: n, by: batch) {
        let b = min(batch, n - start)
        let x = src.baseAddress! + start * per
        let codes = model.encode(x, batch: b)
        for c in codes { counts[Int(c)] += 1 }
        let out = codes.withUnsafeBufferPointer { model.decode($0.baseAddress!, batch: b) }
        for i in 0..<(b * per) {
          let d = Double(min(max(out[i], -0.5), 0.5) - x[i])
          squared += d * d
        }
      }
    }
    let mse = squared / Double(n * per)
    return VQVAEEvaluation(split: split, images: n, mse: mse, psnrDB: 10 * log10(1 / max(mse, 1e-12)),
                           perplexity: VectorQuantizer.perplexity(counts), codesUsed: counts.filter { $0 > 0 }.count)
  }
}
