import Foundation
import IGPTData
import IGPTModel
import IGPTTraining

/// A VQ-VAE checkpoint RUN/checkpoints/step-NNNNNNNN/: vqvae.safetensors (every network tensor
/// by name, and the quantiser's `quantizer.codebook`, `quantizer.cluster_size`,
/// `quantizer.embed_sum`), optimizer.safetensors (AdamW's moments) and state.json (step,
/// config, shape, the loss's variance, the last evaluation, checksums of both files). Written
/// atomically; read back verified.
public enum VQVAECheckpoint {
  public struct State: Codable, Equatable, Sendable {
    public var formatVersion = 1
    public var kind = "igpt-vqvae"
    public var step: Int
    public var config: VQVAERunConfig
    public var model: VQVAEConfig
    public var dataset: String
    public var variance: Double
    public var checksums: [String: UInt32]
    public var loss: Double?
    public var eval: VQVAEEvaluation?

    enum CodingKeys: String, CodingKey {
      case kind, step, config, model, dataset, variance, checksums, loss, eval
      case formatVersion = "format_version"
    }

    public init(step: Int, config: VQVAERunConfig, model: VQVAEConfig, dataset: String, variance: Double, checksums: [String: UInt32],
                loss: Double?, eval: VQVAEEvaluation?) {
      self.step = step; self.config = config; self.model = model; self.dataset = dataset; self.variance = variance
      self.checksums = checksums; self.loss = loss; self.eval = eval
    }
  }

  /// A verified checkpoint.
  public struct Loaded {
    public var path: String
    public var state: State
    public var model: VQVAE
    public var m: [Float]
    public var v: [Float]
  }

  static let modelFile = "vqvae.safetensors", optimizerFile = "optimizer.safetensors"

  /// The quantiser's tensors, by name.
  static func quantizerEntries(_ q: VectorQuantizer, _ body: ([Safetensors.Entry]) throws -> UInt32) throws -> UInt32 {
    try q.codebook.withUnsafeBufferPointer { e in
      try q.clusterSize.withUnsafeBufferPointer { c in
        try q.embedSum.withUnsafeBufferPointer { s in
          try body([.init(name: "quantizer.codebook", shape: [q.codes, q.dim], data: e),
                    .init(name: "quantizer.cluster_size", shape: [q.codes], data: c),
                    .init(name: "quantizer.embed_sum", shape: [q.codes, q.dim], data: s)])
        }
      }
    }
  }

  @discardableResult
  public static func write(runDir: String, state: State, model: VQVAE, m: [Float], v: [Float], keep: Int) throws -> String {
    try Interruption.critical {
      let dir = try Checkpoint.stepDirectory(runDir: runDir, step: state.step)
      let root = (runDir as NSString).appendingPathComponent("checkpoints"), dest = dir.destination
      func write(_ name: String, _ entries: [Safetensors.Entry], _ metadata: [String: String]) throws -> UInt32 {
        try Checkpoint.writeSafetensors(dir, name, entries, metadata: metadata)
      }
      let network = model.tensors.map { Safetensors.Entry(name: $0.name, shape: $0.shape, data: UnsafeBufferPointer(start: model.params + $0.offset, count: $0.count)) }
      let modelCRC = try quantizerEntries(model.quantizer) { try write(modelFile, network + $0, ["format": "igpt-vqvae", "step": "\(state.step)"]) }
      let optimizerCRC = try m.withUnsafeBufferPointer { mp in
        try v.withUnsafeBufferPointer { vp in
          try write(optimizerFile, [.init(name: "adam.m", shape: [m.count], data: mp), .init(name: "adam.v", shape: [v.count], data: vp)],
                    ["format": "igpt-adamw", "steps": "\(state.step)"])
        }
      }
      var s = state
      s.checksums = [modelFile: modelCRC, optimizerFile: optimizerCRC]
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try dir.write(try encoder.encode(s), to: "state.json")
      try dir.commit()
      Checkpoint.prune(root: root, keep: keep)
      return dest
    }
  }

  /// A run directory's newest checkpoint path, or a VQ-VAE checkpoint directory itself.
  public static func resolve(_ path: String) throws -> String {
    if FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("state.json")) { return path }
    guard let newest = Checkpoint.list(runDir: path).first else { throw VQVAEError("\(path): no VQ-VAE checkpoint (a run directory or a step directory)") }
    return newest
  }

  /// Reads and verifies one checkpoint directory; a one-line error names what is wrong.
  public static func read(_ path: String) throws -> Loaded {
    let statePath = (path as NSString).appendingPathComponent("state.json")
    guard let stateData = FileManager.default.contents(atPath: statePath) else { throw DataError.file(statePath, "missing or unreadable") }
    let state: State
    do { state = try JSONDecoder().decode(State.self, from: stateData) } catch {
      throw DataError.file(statePath, "not a VQ-VAE checkpoint's state (\(error))")
    }
    guard state.kind == "igpt-vqvae", state.formatVersion == 1 else { throw DataError.file(statePath, "not a version-1 igpt VQ-VAE checkpoint") }
    if let p = state.model.problem { throw DataError.file(statePath, "model: \(p)") }
    var files: [String: MappedFile] = [:]
    for name in [modelFile, optimizerFile] {
      let p = (path as NSString).appendingPathComponent(name)
      let f = try MappedFile(path: p)
      guard let want = state.checksums[name] else { throw DataError.file(path, "state.json has no checksum for \(name)") }
      let crc = Checksum.crc32(f.bytes)
      guard crc == want else { throw DataError.file(p, String(format: "checksum mismatch (crc32 %08x, state.json %08x): truncated or corrupt", crc, want)) }
      files[name] = f
    }
    let model = try VQVAE(config: state.model)
    let modelPath = (path as NSString).appendingPathComponent(modelFile)
    let index = try Safetensors.index(files[modelFile]!.bytes, name: modelPath)
    func copy(_ name: String, _ shape: [Int], _ file: MappedFile, _ fileIndex: Safetensors.Index, _ p: String, to dst: UnsafeMutablePointer<Float>) throws {
      guard let t = fileIndex.tensors[name], t.shape == shape, t.bytes.count == shape.reduce(1, *) * 4 else {
        throw DataError.file(p, "has no tensor \(name) of shape \(shape)")
      }
      fileIndex.copy(name, from: file.bytes, to: dst)
    }
    for t in model.tensors { try copy(t.name, t.shape, files[modelFile]!, index, modelPath, to: model.params + t.offset) }
    let q = model.quantizer
    try copy("quantizer.codebook", [q.codes, q.dim], files[modelFile]!, index, modelPath, to: &q.codebook)
    try copy("quantizer.cluster_size", [q.codes], files[modelFile]!, index, modelPath, to: &q.clusterSize)
    try copy("quantizer.embed_sum", [q.codes, q.dim], files[modelFile]!, index, modelPath, to: &q.embedSum)
    let optPath = (path as NSString).appendingPathComponent(optimizerFile)
    let opt = try Safetensors.index(files[optimizerFile]!.bytes, name: optPath)
    var m = [Float](repeating: 0, count: model.parameterCount), v = m
    try copy("adam.m", [model.parameterCount], files[optimizerFile]!, opt, optPath, to: &m)
    try copy("adam.v", [model.parameterCount], files[optimizerFile]!, opt, optPath, to: &v)
    return Loaded(path: path, state: state, model: model, m: m, v: v)
  }

  /// The newest checkpoint of a run that reads back intact (bad ones reported and skipped).
  public static func newestGood(runDir: String, warn: (String) -> Void) -> Loaded? {
    for path in Checkpoint.list(runDir: runDir) {
      do { return try read(path) } catch { warn("skipping checkpoint \(path): \(error)") }
    }
    return nil
  }
}
