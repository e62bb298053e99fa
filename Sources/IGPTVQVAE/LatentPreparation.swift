import Foundation
import IGPTData
import IGPTKernels

/// `igpt prepare --tokenizer vqvae`: images to a latent token store. Every split (the same
/// images `prepare` would give it) is encoded by a trained VQ-VAE into its grid of codes in
/// raster order; the manifest (version 2) names the VQ-VAE, so the store decodes back to images.
public enum LatentPreparation {
  public struct Options: Sendable {
    public var dataset: String
    /// A VQ-VAE run directory (its newest checkpoint) or checkpoint directory.
    public var vqvae: String
    public var out: String
    public var valFraction = 0.1
    public var seed: UInt64 = 0
    public var crop = false
    public var shardSize = 10_000
    /// Images encoded per batch.
    public var batch = 256

    public init(dataset: String, vqvae: String, out: String) {
      self.dataset = dataset
      self.vqvae = vqvae
      self.out = out
    }
  }

  /// What was written, for the summary line.
  public struct Summary: Sendable {
    public var counts: [String: Int]
    public var seconds: [String: Double]
    public var grid: Int
    public var codes: Int
    public var out: String
  }

  public static func run(_ o: Options, progress: @escaping (String, Int, Int) -> Void) throws -> Summary {
    guard o.shardSize >= 1, o.batch >= 1 else { throw DataError("--shard-size must be at least 1") }
    if FileManager.default.fileExists(atPath: o.out) { throw DataError.file(o.out, "already exists (choose another --out or remove it)") }
    let checkpoint = URL(fileURLWithPath: try VQVAECheckpoint.resolve(o.vqvae)).standardizedFileURL.path
    let loaded = try VQVAECheckpoint.read(checkpoint)
    let model = loaded.model, g = model.config
    var seconds: [String: Double] = [:]
    var clock = Date()
    func lap(_ phase: String) {
      seconds[phase] = Date().timeIntervalSince(clock)
      clock = Date()
    }
    progress("read", 0, 1)
    let data = try ImageSplits.load(dataset: o.dataset, resolution: g.resolution, crop: o.crop, valFraction: o.valFraction, seed: o.seed) {
      progress("read", $0, $1)
    }
    guard data.channels == g.channels else {
      throw DataError.file(o.dataset, "has \(data.channels)-channel images; the VQ-VAE takes \(g.channels)")
    }
    lap("read")
    let names = data.images.keys.sorted()
    let total = names.reduce(0) { $0 + data.count($1) }
    let T = model.latentsPerImage, per = data.floatsPerImage
    var codes: [String: [UInt16]] = [:]
    var done = 0
    for name in names {
      let n = data.count(name)
      var out = [UInt16](repeating: 0, count: n * T)
      data.images[name]!.withUnsafeBufferPointer { src in
        for start in stride(from: 0, to: n, by: o.batch) {
          let b = min(o.batch, n - start)
          let c = model.encode(src.baseAddress! + start * per, batch: b)
          for i in 0..<(b * T) { out[start * T + i] = UInt16(c[i]) }
          done += b
          progress("encode", done, total)
        }
      }
      codes[name] = out
    }
    lap("encode")
    let tokenBytes = TokenShard.tokenBytes(vocab: g.codes)
    let dir = try AtomicDirectory(destination: o.out)
    var splits: [String: TokenStoreManifest.Split] = [:]
    var written = 0
    for name in names {
      let all = codes[name]!, n = data.count(name)
      let labels = data.labels[name] ?? [], sources = data.sourceIndices[name] ?? []
      var shards: [TokenStoreManifest.Shard] = []
      for (s, start) in stride(from: 0, to: n, by: o.shardSize).enumerated() {
        let end = min(n, start + o.shardSize)
        let bytes = TokenShard.encode(tokens: all[(start * T)..<(end * T)], tokenBytes: tokenBytes, sequenceLength: T,
                                      labels: labels.isEmpty ? nil : labels[start..<end], sourceIndices: sources[start..<end])
        let file = String(format: "%@-%05d.shard", name, s)
        try dir.write(bytes, to: file)
        shards.append(.init(file: file, count: end - start, bytes: bytes.count, crc32: bytes.withUnsafeBytes { Checksum.crc32($0) }))
        written += end - start
        progress("write", written, total)
      }
      splits[name] = .init(count: n, sourceSplit: data.sourceSplits[name] ?? name, shards: shards)
    }
    let reference = TokenStoreManifest.VQVAEReference(checkpoint: checkpoint, crc32: loaded.state.checksums[VQVAECheckpoint.modelFile] ?? 0,
                                                      codes: g.codes, grid: g.grid, imageResolution: g.resolution)
    let manifest = TokenStoreManifest(
      formatVersion: TokenStoreManifest.currentVersion, createdBy: "igpt prepare --tokenizer vqvae",
      source: .init(dataset: o.dataset, format: data.format, path: data.source), resolution: g.grid, channels: g.channels, crop: o.crop,
      sequenceLength: T, palette: [], tokenizer: .init(kind: .vqvae, vqvae: reference), classes: data.classNames, seed: o.seed,
      valFraction: data.sourceSplits["val"] == "train" ? o.valFraction : 0, splits: splits)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try dir.write(try encoder.encode(manifest), to: "manifest.json")
    try dir.commit()
    lap("write")
    return Summary(counts: splits.mapValues(\.count), seconds: seconds, grid: g.grid, codes: g.codes, out: dir.destination)
  }
}
