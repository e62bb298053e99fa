import Foundation
import IGPTKernels
import IGPTTestSupport
import Testing
@testable import IGPTData

@Suite struct TokenStoreTests {
  init() { Parallel.threads = 2 }

  func prepare(_ source: String, out: String, seed: UInt64 = 3, palette: String? = nil, k: Int? = 3, shard: Int = 4) throws -> Preparation.Summary {
    var o = Preparation.Options(dataset: source, resolution: 4, out: out)
    o.paletteSize = k
    o.paletteFrom = palette
    o.seed = seed
    o.valFraction = 0.25
    o.shardSize = shard
    return try Preparation.run(o) { _, _, _ in }
  }

  /// A version-1 manifest (no tokenizer: a palette) still opens, with the same palette and
  /// tokens; a latent manifest that contradicts itself is refused with one line.
  @Test func versionOneStoresStillReadAndBadTokenizersAreRefused() throws {
    let src = Fixtures.directory("srcv1")
    Fixtures.folderDataset(at: src, classes: ["a", "b"], perClass: 6, side: 8)
    let out = Fixtures.directory("storesv1") + "/s"
    _ = try prepare(src, out: out)
    let v2 = try TokenStore(path: out)
    let path = out + "/manifest.json"
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    json["format_version"] = 1
    json.removeValue(forKey: "tokenizer")
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    let v1 = try TokenStore(path: out)
    #expect(v1.manifest.formatVersion == 1 && v1.manifest.tokenKind == .palette && v1.palette == v2.palette && v1.vocab == 3)
    #expect(try v1.split("train").tokens(0) == v2.split("train").tokens(0))
    // a VQ-VAE tokenizer beside a palette, or whose grid is not the store's: refused
    json["format_version"] = 2
    json["tokenizer"] = ["kind": "vqvae", "vqvae": ["checkpoint": "/x", "crc32": 1, "codes": 16, "grid": 4, "image_resolution": 16]]
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    #expect { try TokenStore(path: out) } throws: { "\($0)".contains("a VQ-VAE store with a palette") }
    json["palette"] = []
    json["tokenizer"] = ["kind": "vqvae", "vqvae": ["checkpoint": "/x", "crc32": 1, "codes": 16, "grid": 3, "image_resolution": 16]]
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    #expect { try TokenStore(path: out) } throws: { "\($0)".contains("inconsistent VQ-VAE codes") }
    json["tokenizer"] = ["kind": "vqvae", "vqvae": ["checkpoint": "/x", "crc32": 1, "codes": 16, "grid": 4, "image_resolution": 16]]
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    let latent = try TokenStore(path: out)
    #expect(latent.palette == nil && latent.vocab == 16)
  }

  @Test func storeRoundTripsTokensLabelsAndSplits() throws {
    let src = Fixtures.directory("src")
    Fixtures.folderDataset(at: src, classes: ["a", "b"], perClass: 6, side: 8)
    let out = Fixtures.directory("stores") + "/s1"
    let summary = try prepare(src, out: out)
    #expect(summary.counts == ["train": 9, "val": 3])
    let store = try TokenStore(path: out)
    #expect(store.manifest.sequenceLength == 16 && store.palette?.count == 3 && store.manifest.formatVersion == 2 && store.manifest.tokenizer == .palette && store.manifest.classes == ["a", "b"])
    // recompute the tokens of every image independently and compare
    let source = try DatasetLoader.load(src)
    let floats = Resize.images(source.train, to: 4, crop: false)
    let expected = Quantizer.nearest(floats, palette: store.palette!)
    var seen = Set<Int>()
    for name in ["train", "val"] {
      let split = try store.split(name)
      try split.verify()
      for i in 0..<split.count {
        let idx = try split.sourceIndex(i)
        seen.insert(idx)
        #expect(try split.tokens(i) == expected[(idx * 16)..<(idx * 16 + 16)].map { Int32($0) })
        #expect(try split.label(i) == source.train.labels[idx])
      }
    }
    #expect(seen == Set(0..<12))  // train and val partition the source
    #expect(try store.split("train").info.shards.count == 3)  // 9 images in shards of 4
    #expect(throws: DataError.self) { try store.split("test") }
  }

  @Test func sameSeedSameBytesOtherSeedOtherSplit() throws {
    let src = Fixtures.directory("det")
    Fixtures.folderDataset(at: src, classes: ["a", "b"], perClass: 10, side: 8)
    let base = Fixtures.directory("detout")
    _ = try prepare(src, out: base + "/a", seed: 5)
    _ = try prepare(src, out: base + "/b", seed: 5)
    _ = try prepare(src, out: base + "/c", seed: 6)
    for f in ["manifest.json", "train-00000.shard", "val-00000.shard"] {
      #expect(FileManager.default.contents(atPath: base + "/a/" + f) == FileManager.default.contents(atPath: base + "/b/" + f))
    }
    let va = try TokenStore(path: base + "/a").split("val"), vc = try TokenStore(path: base + "/c").split("val")
    #expect(try (0..<va.count).map { try va.sourceIndex($0) } != (0..<vc.count).map { try vc.sourceIndex($0) })
  }

  @Test func importedPaletteQuantisesExactlyLikeTheComputedOne() throws {
    let src = Fixtures.directory("imp")
    Fixtures.folderDataset(at: src, classes: [], perClass: 8, side: 8)
    let base = Fixtures.directory("impout")
    _ = try prepare(src, out: base + "/computed")
    let computed = try TokenStore(path: base + "/computed")
    let npy = base + "/computed/palette.npy"  // exported by prepare
    #expect(try Palette.load(npy: npy) == computed.palette)
    _ = try prepare(src, out: base + "/imported", palette: npy, k: nil)
    #expect(FileManager.default.contents(atPath: base + "/computed/train-00000.shard")
            == FileManager.default.contents(atPath: base + "/imported/train-00000.shard"))
  }

  @Test func flippedBitOrTruncatedShardIsDetectedOnRead() throws {
    let src = Fixtures.directory("flip")
    Fixtures.folderDataset(at: src, classes: [], perClass: 8, side: 8)
    let out = Fixtures.directory("flipout") + "/s"
    _ = try prepare(src, out: out)
    let shard = out + "/train-00000.shard"
    var data = FileManager.default.contents(atPath: shard)!
    data[40] ^= 0x04
    FileManager.default.createFile(atPath: shard, contents: data)
    let split = try TokenStore(path: out).split("train")
    #expect { try split.tokens(0) } throws: { e in "\(e)".contains(shard) && "\(e)".contains("checksum") }
    FileManager.default.createFile(atPath: shard, contents: data.prefix(50))
    #expect { try TokenStore(path: out).split("train").tokens(0) } throws: { e in "\(e)".contains("bytes") }
  }

  @Test func failedPrepareLeavesNothingBehind() throws {
    let src = Fixtures.directory("fail")
    Fixtures.folderDataset(at: src, classes: [], perClass: 3, side: 8)
    let bad = (src as NSString).appendingPathComponent("00001.png")
    FileManager.default.createFile(atPath: bad, contents: Data([1, 2, 3]))
    let parent = Fixtures.directory("failout")
    #expect(throws: DataError.self) { try prepare(src, out: parent + "/s") }
    #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
    #expect(throws: DataError.self) { try prepare(src, out: parent + "/s", k: 1) }
  }

  @Test func aMalformedManifestIsAOneLineError() throws {
    let dir = Fixtures.directory("badmanifest")
    FileManager.default.createFile(atPath: dir + "/manifest.json", contents: Data("{\"format_version\": 1}".utf8))
    #expect { try TokenStore(path: dir) } throws: { e in "\(e)".contains("manifest") && !"\(e)".contains("\n") }
    #expect(throws: DataError.self) { try TokenStore(path: Fixtures.directory("empty")) }
  }

  /// A manifest whose shard entries cannot be the files it names (counts that do not add up,
  /// sizes the counts do not make, names outside the store) is refused when the store opens,
  /// before any shard is mapped.
  @Test(arguments: [
    ("count", "split 'train': count"), ("bytes", "is said to be"), ("file", "is not a file in the store"), ("huge", "has count"),
  ])
  func aManifestWhoseShardsCannotBeRightIsRefused(field: String, message: String) throws {
    let src = Fixtures.directory("lyingsrc")
    Fixtures.folderDataset(at: src, classes: ["a", "b"], perClass: 3, side: 4)
    let out = Fixtures.directory("lying") + "/s"
    _ = try prepare(src, out: out)
    let path = out + "/manifest.json"
    var m = try JSONDecoder().decode(TokenStoreManifest.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
    var train = try #require(m.splits["train"])
    switch field {
    case "count": train.count += 1
    case "bytes": train.shards[0].bytes += 1
    case "file": train.shards[0].file = "../" + train.shards[0].file
    default: train.shards[0].count = Int.max
    }
    m.splits["train"] = train
    try JSONEncoder().encode(m).write(to: URL(fileURLWithPath: path))
    #expect { try TokenStore(path: out) } throws: { e in "\(e)".contains(message) && !"\(e)".contains("\n") }
  }
}
