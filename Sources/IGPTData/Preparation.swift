import Foundation
import IGPTModel
import IGPTKernels

/// `igpt prepare`: images to a token store. Read, resize, learn (or load) the palette on the
/// train split, quantise every split, carve a seeded validation split, write atomically.
public enum Preparation {
  public struct Options: Sendable {
    public var dataset: String
    public var format: DatasetLoader.Format?
    public var resolution: Int
    /// Colours; nil = 512 for RGB, 16 for grey.
    public var paletteSize: Int?
    public var paletteFrom: String?
    public var out: String
    public var valFraction: Double = 0.1
    public var seed: UInt64 = 0
    public var crop: Bool = false
    public var paletteSample: Int = 262_144
    public var kmeansIterations: Int = 30
    public var shardSize: Int = 10_000

    public init(dataset: String, resolution: Int, out: String) {
      self.dataset = dataset
      self.resolution = resolution
      self.out = out
    }
  }

  /// What was prepared, for the summary line.
  public struct Summary: Sendable {
    public var counts: [String: Int]
    public var palette: Palette
    public var seconds: [String: Double]
    public var out: String
    public var classes: [String]
  }

  /// Checks options that need no data, so a bad value fails before any work.
  public static func validate(_ o: Options) throws {
    guard o.resolution >= 1 && o.resolution <= 1024 else {
      throw DataError("--resolution must be between 1 and 1024 (got \(o.resolution))")
    }
    if let k = o.paletteSize, !(2...65_536).contains(k) {
      throw DataError("--palette must be between 2 and 65536 (got \(k))")
    }
    guard o.valFraction >= 0 && o.valFraction < 1 else {
      throw DataError("--val-fraction must be in [0, 1) (got \(o.valFraction))")
    }
    guard o.shardSize >= 1 else { throw DataError("--shard-size must be at least 1") }
    if FileManager.default.fileExists(atPath: o.out) {
      throw DataError.file(o.out, "already exists (choose another --out or remove it)")
    }
  }

  /// A source without a val split: the train images kept for train and those carved out for
  /// val (valFraction of them, by a permutation seeded by `seed`), each in increasing order.
  public static func carve(count: Int, valFraction: Double, seed: UInt64) -> (train: [Int], val: [Int]) {
    guard valFraction > 0 else { return (Array(0..<count), []) }
    var rng = SeededRandom(seed: seed &+ 0x5A17)
    var perm = Array(0..<count)
    for i in stride(from: count - 1, to: 0, by: -1) {
      perm.swapAt(i, Int(rng.next() % UInt64(i + 1)))
    }
    let nVal = Int((Double(count) * valFraction).rounded())
    return (perm[nVal...].sorted(), perm[0..<nVal].sorted())
  }

  /// Runs the whole preparation; progress(phase, done, total) is called as work proceeds.
  public static func run(_ o: Options, progress: @escaping (String, Int, Int) -> Void) throws -> Summary {
    try validate(o)
    var seconds: [String: Double] = [:]
    var clock = Date()
    func lap(_ phase: String) {
      seconds[phase] = Date().timeIntervalSince(clock)
      clock = Date()
    }
    // Load a given palette first: a bad file fails before the dataset is read.
    let given = try o.paletteFrom.map { try Palette.load(from: $0) }
    progress("read", 0, 1)
    let source = try DatasetLoader.load(o.dataset, format: o.format) { progress("read", $0, $1) }
    lap("read")
    let channels = source.train.channels
    if let given, given.channels != channels {
      throw DataError.file(o.paletteFrom!, "palette has \(given.channels) channel(s), the images have \(channels)")
    }
    if let given, let k = o.paletteSize, k != given.count {
      throw DataError.file(o.paletteFrom!, "palette has \(given.count) colours, --palette says \(k)")
    }
    // Resize every split.
    var sets: [String: ImageSet] = ["train": source.train]
    if let t = source.test { sets["test"] = t }
    if let v = source.val { sets["val"] = v }
    // resized floats and their tokens beside the decoded source (a folder's pixels were
    // checked before decoding)
    let images = sets.values.reduce(0) { $0 + $1.count }
    let sourceBytes = sets.values.reduce(0.0) { $0 + Double($1.pixels.count) }
    let pixelsOut = Double(images) * Double(o.resolution) * Double(o.resolution)
    try MemoryBudget.check(sourceBytes + pixelsOut * (4 * Double(channels) + 2), for: "preparing \(images) images at \(o.resolution)x\(o.resolution)")
    var resized: [String: [Float]] = [:]
    for (i, name) in sets.keys.sorted().enumerated() {
      progress("resize", i, sets.count)
      resized[name] = Resize.images(sets[name]!, to: o.resolution, crop: o.crop)
    }
    lap("resize")
    let T = o.resolution * o.resolution
    // Val carved out of train by a seeded permutation (unless the source ships one).
    let trainCount = source.train.count
    let (trainIndices, valIndices) = source.val == nil ? carve(count: trainCount, valFraction: o.valFraction, seed: o.seed)
                                                       : (Array(0..<trainCount), [])
    // Palette: given, or k-means on a seeded sample of train pixels.
    let palette: Palette
    if let given {
      palette = given
    } else {
      let k = o.paletteSize ?? (channels == 3 ? 512 : 16)
      let trainPixels = resized["train"]!
      let available = trainIndices.count * T
      let n = min(available, max(o.paletteSample, k))
      var rng = SeededRandom(seed: o.seed &+ 0xC01)
      var sample = [Float](repeating: 0, count: n * channels)
      for s in 0..<n {
        let flat = Int(rng.next() % UInt64(available))
        let pixel = trainIndices[flat / T] * T + flat % T
        for ch in 0..<channels { sample[s * channels + ch] = trainPixels[pixel * channels + ch] }
      }
      palette = try Palette.kmeans(pixels: sample, channels: channels, k: k, seed: o.seed,
                                   iterations: o.kmeansIterations) { progress("palette", $0, $1) }
    }
    lap("palette")
    // Quantise.
    var tokens: [String: [UInt16]] = [:]
    for (i, name) in resized.keys.sorted().enumerated() {
      progress("quantise", i, resized.count)
      tokens[name] = Quantizer.nearest(resized[name]!, palette: palette)
    }
    lap("quantise")
    // Write: train (and carved val) from the train source, test and shipped val as they are.
    var plan: [(String, String, [Int])] = [("train", "train", trainIndices)]
    if !valIndices.isEmpty { plan.append(("val", "train", valIndices)) }
    if source.val != nil { plan.append(("val", "val", Array(0..<source.val!.count))) }
    if source.test != nil { plan.append(("test", "test", Array(0..<source.test!.count))) }
    let dir = try AtomicDirectory(destination: o.out)
    var splits: [String: TokenStoreManifest.Split] = [:]
    var written = 0
    let total = plan.reduce(0) { $0 + $1.2.count }
    for (name, from, indices) in plan {
      let all = tokens[from]!
      let labels = sets[from]!.labels
      var shards: [TokenStoreManifest.Shard] = []
      for (s, start) in stride(from: 0, to: indices.count, by: o.shardSize).enumerated() {
        let chunk = indices[start..<min(indices.count, start + o.shardSize)]
        var shardTokens = [UInt16](repeating: 0, count: chunk.count * T)
        for (j, idx) in chunk.enumerated() {
          for t in 0..<T { shardTokens[j * T + t] = all[idx * T + t] }
        }
        let shardLabels = labels.isEmpty ? nil : ArraySlice(chunk.map { labels[$0] })
        let data = TokenShard.encode(
          tokens: shardTokens[...], tokenBytes: palette.tokenBytes, sequenceLength: T,
          labels: shardLabels, sourceIndices: ArraySlice(chunk.map { Int32($0) }))
        let file = String(format: "%@-%05d.shard", name, s)
        try dir.write(data, to: file)
        let crc = data.withUnsafeBytes { Checksum.crc32($0) }
        shards.append(.init(file: file, count: chunk.count, bytes: data.count, crc32: crc))
        written += chunk.count
        progress("write", written, total)
      }
      splits[name] = .init(count: indices.count, sourceSplit: from, shards: shards)
    }
    let manifest = TokenStoreManifest(
      formatVersion: TokenStoreManifest.currentVersion, createdBy: "igpt prepare",
      source: .init(dataset: o.dataset, format: source.format, path: DatasetLoader.resolve(o.dataset)),
      resolution: o.resolution, channels: channels, crop: o.crop, sequenceLength: T,
      palette: (0..<palette.count).map { Array(palette.colors[($0 * channels)..<($0 * channels + channels)]) },
      tokenizer: .palette, classes: source.classNames, seed: o.seed, valFraction: source.val == nil ? o.valFraction : 0,
      splits: splits)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try dir.write(try encoder.encode(manifest), to: "manifest.json")
    // the palette in OpenAI's kmeans_centers.npy layout, for other tools (and --palette-from)
    try dir.write(palette.npy(), to: "palette.npy")
    try dir.commit()
    lap("write")
    return Summary(counts: splits.mapValues(\.count), palette: palette, seconds: seconds, out: dir.destination,
                   classes: source.classNames)
  }
}
