import Foundation

/// A prepared token store, read by memory mapping: the manifest plus each split's shards,
/// mapped and checksum-verified the first time they are touched.
public final class TokenStore: @unchecked Sendable {
  public let path: String
  public let manifest: TokenStoreManifest
  /// The palette tokens stand for (nil: a latent store, whose tokens are VQ-VAE codes).
  public let palette: Palette?
  private var splits: [String: TokenSplit] = [:]
  private let lock = NSLock()

  /// Opens the store at `path`; throws a one-line DataError for a missing or invalid manifest.
  public init(path: String) throws {
    self.path = path
    let manifestPath = (path as NSString).appendingPathComponent("manifest.json")
    guard let data = FileManager.default.contents(atPath: manifestPath) else {
      throw DataError.file(path, "not a token store (no readable manifest.json)")
    }
    let m: TokenStoreManifest
    do { m = try JSONDecoder().decode(TokenStoreManifest.self, from: data) } catch {
      throw DataError.file(manifestPath, "malformed manifest (\(Self.describe(error)))")
    }
    guard TokenStoreManifest.readableVersions.contains(m.formatVersion) else {
      throw DataError.file(manifestPath, "format version \(m.formatVersion); this igpt reads versions \(TokenStoreManifest.readableVersions.lowerBound)-\(TokenStoreManifest.readableVersions.upperBound)")
    }
    guard (1...1024).contains(m.resolution), m.channels == 1 || m.channels == 3,
      m.sequenceLength == m.resolution * m.resolution, m.palette.allSatisfy({ $0.count == m.channels })
    else {
      throw DataError.file(manifestPath, "inconsistent resolution, sequence length, channels or palette")
    }
    if let why = Self.problem(m.tokenKind, manifest: m) { throw DataError.file(manifestPath, why) }
    do { palette = try m.makePalette() } catch { throw DataError.file(manifestPath, "\(error)") }
    for (name, split) in m.splits.sorted(by: { $0.key < $1.key }) {
      if let why = Self.problem(split, sequenceLength: m.sequenceLength, tokenBytes: m.tokenBytes) {
        throw DataError.file(manifestPath, "split '\(name)': \(why)")
      }
    }
    manifest = m
  }

  /// What is wrong with the tokenizer's entry, if anything.
  static func problem(_ t: TokenStoreManifest.Tokenizer, manifest m: TokenStoreManifest) -> String? {
    switch t.kind {
    case .palette:
      if t.vqvae != nil { return "a palette tokenizer names a VQ-VAE" }
      if m.palette.isEmpty { return "no palette" }
    case .vqvae:
      guard let v = t.vqvae else { return "a vqvae tokenizer without its checkpoint" }
      if !m.palette.isEmpty { return "a VQ-VAE store with a palette" }
      guard (2...65_536).contains(v.codes), v.grid == m.resolution, (1...4096).contains(v.imageResolution), v.imageResolution >= v.grid else {
        return "inconsistent VQ-VAE codes (\(v.codes)), grid (\(v.grid)) or image resolution (\(v.imageResolution))"
      }
    }
    return nil
  }

  /// Distinct tokens (palette colours or VQ-VAE codes).
  public var vocab: Int { manifest.vocab }

  /// What is wrong with a split's entry, if anything: shard files outside the store, counts
  /// that do not add up, or sizes other than the header, tokens, labels and indices make.
  static func problem(_ split: TokenStoreManifest.Split, sequenceLength: Int, tokenBytes: Int) -> String? {
    var total = 0
    for s in split.shards {
      if s.file.isEmpty || s.file.contains("/") || s.file.hasPrefix(".") { return "shard name '\(s.file)' is not a file in the store" }
      guard s.count >= 0, s.count <= Int(Int32.max) else { return "shard \(s.file) has count \(s.count)" }
      // at most 2^31 images of 2^21 two-byte tokens: no overflow
      let size = TokenShard.headerBytes + s.count * (sequenceLength * tokenBytes + 8)
      guard s.bytes == size else { return "shard \(s.file) is said to be \(s.bytes) bytes, \(s.count) images make \(size)" }
      total += s.count
    }
    guard split.count == total else { return "count \(split.count), its shards hold \(total)" }
    return nil
  }

  static func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
      return "bad value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
    case DecodingError.dataCorrupted(let c): return c.debugDescription
    default: return "\(error)"
    }
  }

  public var splitNames: [String] { manifest.splits.keys.sorted() }

  /// One split; throws if the store has no such split.
  public func split(_ name: String) throws -> TokenSplit {
    lock.lock()
    defer { lock.unlock() }
    if let s = splits[name] { return s }
    guard let info = manifest.splits[name] else {
      throw DataError.file(path, "has no split '\(name)' (it has \(splitNames.joined(separator: ", ")))")
    }
    let s = TokenSplit(store: path, name: name, info: info, sequenceLength: manifest.sequenceLength,
                       tokenBytes: manifest.tokenBytes)
    splits[name] = s
    return s
  }
}

/// The images of one split: tokens, labels and source indices, shard by shard.
public final class TokenSplit: @unchecked Sendable {
  public let name: String
  public let count: Int
  public let sequenceLength: Int
  let tokenBytes: Int
  let store: String
  let info: TokenStoreManifest.Split
  /// First image index of each shard.
  let starts: [Int]
  private var mapped: [Int: MappedFile] = [:]
  private let lock = NSLock()

  init(store: String, name: String, info: TokenStoreManifest.Split, sequenceLength: Int, tokenBytes: Int) {
    self.store = store
    self.name = name
    self.info = info
    self.count = info.count
    self.sequenceLength = sequenceLength
    self.tokenBytes = tokenBytes
    var s: [Int] = []
    var n = 0
    for shard in info.shards {
      s.append(n)
      n += shard.count
    }
    starts = s
  }

  /// The mapped, verified bytes of shard i (checksum checked on first use).
  func shard(_ i: Int) throws -> UnsafeRawBufferPointer {
    lock.lock()
    defer { lock.unlock() }
    if let m = mapped[i] { return m.bytes }
    let s = info.shards[i]
    let path = (store as NSString).appendingPathComponent(s.file)
    let m = try MappedFile(path: path)
    guard m.bytes.count == s.bytes else {
      throw DataError.file(path, "is \(m.bytes.count) bytes, the manifest says \(s.bytes) (truncated or replaced)")
    }
    let crc = Checksum.crc32(m.bytes)
    guard crc == s.crc32 else {
      throw DataError.file(path, String(format: "checksum mismatch (crc32 %08x, manifest %08x): the shard is corrupt", crc, s.crc32))
    }
    try TokenShard.validateHeader(m.bytes, path: path, tokenBytes: tokenBytes,
                                  sequenceLength: sequenceLength, count: s.count)
    mapped[i] = m
    return m.bytes
  }

  /// Verifies every shard of the split (reads them all once).
  public func verify() throws {
    for i in info.shards.indices { _ = try shard(i) }
  }

  private func locate(_ index: Int) throws -> (bytes: UnsafeRawBufferPointer, local: Int, shardCount: Int) {
    guard index >= 0 && index < count else {
      throw DataError.file(store, "image \(index) is outside split '\(name)' (\(count) images)")
    }
    var lo = 0, hi = starts.count - 1
    while lo < hi {
      let mid = (lo + hi + 1) / 2
      if starts[mid] <= index { lo = mid } else { hi = mid - 1 }
    }
    return (try shard(lo), index - starts[lo], info.shards[lo].count)
  }

  /// Copies image `index`'s tokens (sequenceLength) into `out` as Int32.
  public func copyTokens(_ index: Int, into out: UnsafeMutablePointer<Int32>) throws {
    let (b, local, _) = try locate(index)
    let T = sequenceLength
    let base = TokenShard.headerBytes + local * T * tokenBytes
    if tokenBytes == 1 {
      for t in 0..<T { out[t] = Int32(b[base + t]) }
    } else {
      for t in 0..<T {
        out[t] = Int32(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: base + 2 * t, as: UInt16.self)))
      }
    }
  }

  /// Image `index`'s tokens.
  public func tokens(_ index: Int) throws -> [Int32] {
    var out = [Int32](repeating: 0, count: sequenceLength)
    try out.withUnsafeMutableBufferPointer { try copyTokens(index, into: $0.baseAddress!) }
    return out
  }

  private func int32Field(_ index: Int, section: Int) throws -> Int32 {
    let (b, local, n) = try locate(index)
    let offset = TokenShard.headerBytes + n * sequenceLength * tokenBytes + section * n * 4 + local * 4
    return Int32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: Int32.self))
  }

  /// Image `index`'s class label (-1 when the dataset is unlabelled).
  public func label(_ index: Int) throws -> Int32 { try int32Field(index, section: 0) }

  /// Image `index`'s position in its source split (for showing originals).
  public func sourceIndex(_ index: Int) throws -> Int { Int(try int32Field(index, section: 1)) }
}
