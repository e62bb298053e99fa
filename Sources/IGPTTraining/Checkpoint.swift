import Foundation
import IGPTData
import IGPTModel

/// A checkpoint directory DIR/checkpoints/step-NNNNNNNN/: model.safetensors (Hugging Face
/// ImageGPT layout), optimizer.safetensors (both AdamW moments) and state.json (step, data
/// position, seeds, config, palette, and the checksums of the two other files).
public enum Checkpoint {
  public struct State: Codable, Equatable, Sendable {
    public var formatVersion = 1
    public var step: Int
    public var dataEpoch: Int
    public var dataOffset: Int
    public var seed: UInt64
    public var config: RunConfig
    public var model: ModelConfig
    public var store: String
    public var palette: [[Float]]
    public var checksums: [String: UInt32]
    public var loss: Double?
    public var valLoss: Double?
    /// The numerics the run computes with (RunNumerics); nil in checkpoints written before it.
    public var numerics: NumericsFingerprint? = nil
    /// False once processes with other numerics contributed (cluster.numerics: any).
    public var reproducible: Bool? = nil
    /// The store's tokenizer when it is a VQ-VAE (nil: the palette above).
    public var tokenizer: TokenStoreManifest.Tokenizer? = nil
  }

  /// What a verified checkpoint holds. The optimizer file stays mapped, not copied: its moments
  /// go straight into the run's `Optimizer` (`loadMoments`), so resuming needs no second copy.
  public struct Loaded {
    public var path: String
    public var state: State
    public var model: IGPT
    public var optimizerSteps: Int
    let optimizerFile: MappedFile
    let optimizerIndex: Safetensors.Index

    /// Copies both AdamW moments into opt (sized for this model).
    public func loadMoments(into opt: Optimizer) {
      precondition(opt.count == model.parameterCount)
      optimizerIndex.copy("adam.m", from: optimizerFile.bytes, to: opt.m)
      optimizerIndex.copy("adam.v", from: optimizerFile.bytes, to: opt.v)
      opt.steps = optimizerSteps
    }
  }

  /// config.json (ImageGPTConfig) and preprocessor_config.json (the palette as `clusters`) for
  /// a model trained on a store with this palette (rows of 1 or 3 channels). A model of VQ-VAE
  /// codes gets config.json only, naming its VQ-VAE (HF's processor cannot make latents).
  /// The VQ-VAE a Hugging Face config.json names (`igpt_vqvae`, as `huggingFaceFiles` writes
  /// it), nil when it names none; a malformed entry is an error naming the file.
  public static func vqvaeTokenizer(hfConfig path: String) throws -> TokenStoreManifest.Tokenizer? {
    let config = try JSONDecoder().decode(HFConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    guard let v = config.igptVQVAE else { return nil }
    guard let checkpoint = v["checkpoint"], let crc = v["crc32"].flatMap({ UInt32($0, radix: 16) }),
          let codes = v["codes"].flatMap({ Int($0) }), let grid = v["grid"].flatMap({ Int($0) }),
          let side = v["image_resolution"].flatMap({ Int($0) }) else {
      throw DataError.file(path, "igpt_vqvae needs checkpoint, crc32 (hex), codes, grid and image_resolution")
    }
    return .init(kind: .vqvae, vqvae: .init(checkpoint: checkpoint, crc32: crc, codes: codes, grid: grid, imageResolution: side))
  }

  public static func huggingFaceFiles(model: ModelConfig, palette rows: [[Float]], tokenizer: TokenStoreManifest.Tokenizer? = nil) throws -> [(String, Data)] {
    if let v = tokenizer?.vqvae {
      var config = HFConfig(model)
      config.igptVQVAE = ["checkpoint": v.checkpoint, "crc32": String(format: "%08x", v.crc32), "codes": "\(v.codes)", "grid": "\(v.grid)",
                          "image_resolution": "\(v.imageResolution)"]
      return [("config.json", try config.encoded())]
    }
    let palette = try Palette(colors: rows.flatMap { $0 }, channels: rows.first?.count ?? 1)
    let side = Int(Double(model.seq).squareRoot().rounded())
    return [("config.json", try HFConfig(model).encoded()),
            ("preprocessor_config.json", try HFImageProcessorConfig(palette: palette, resolution: side).encoded())]
  }

  public static func directoryName(step: Int) -> String { String(format: "step-%08d", step) }

  /// Writes a checkpoint of step `state.step` under runDir/checkpoints atomically (a hidden
  /// temporary directory renamed into place), then deletes all but the newest `keep`.
  @discardableResult
  public static func write(runDir: String, state: State, model: IGPT, optimizer: Optimizer, keep: Int) throws -> String {
    try Interruption.critical { try writeNow(runDir: runDir, state: state, model: model, optimizer: optimizer, keep: keep) }
  }

  /// The temporary directory of step `step`'s checkpoint under runDir/checkpoints (an older one
  /// of that step is removed), committed into place by the caller. iGPT's and the VQ-VAE's.
  public static func stepDirectory(runDir: String, step: Int) throws -> AtomicDirectory {
    let root = (runDir as NSString).appendingPathComponent("checkpoints")
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    let dest = (root as NSString).appendingPathComponent(directoryName(step: step))
    if FileManager.default.fileExists(atPath: dest) { try FileManager.default.removeItem(atPath: dest) }
    return try AtomicDirectory(destination: dest)
  }

  /// Writes a safetensors file into dir from the slabs, in pieces (igpt-l's would not fit in
  /// memory twice); returns its crc32.
  public static func writeSafetensors(_ dir: AtomicDirectory, _ name: String, _ entries: [Safetensors.Entry],
                                      metadata: [String: String]) throws -> UInt32 {
    try dir.writeFile(name) { w in
      try w.write(try Safetensors.header(entries, metadata: metadata))
      for e in entries { try w.write(UnsafeRawBufferPointer(e.data)) }
    }
  }

  private static func writeNow(runDir: String, state: State, model: IGPT, optimizer: Optimizer, keep: Int) throws -> String {
    let dir = try stepDirectory(runDir: runDir, step: state.step)
    let root = (runDir as NSString).appendingPathComponent("checkpoints"), dest = dir.destination
    func write(_ name: String, _ entries: [Safetensors.Entry], _ metadata: [String: String]) throws -> UInt32 {
      try writeSafetensors(dir, name, entries, metadata: metadata)
    }
    let modelCRC = try model.withHuggingFaceEntries(extraMetadata: ["step": "\(state.step)"]) {
      try write("model.safetensors", $0, $1)
    }
    let n = optimizer.count
    let optimizerCRC = try write(
      "optimizer.safetensors",
      [.init(name: "adam.m", shape: [n], data: UnsafeBufferPointer(start: optimizer.m, count: n)),
       .init(name: "adam.v", shape: [n], data: UnsafeBufferPointer(start: optimizer.v, count: n))],
      ["steps": "\(optimizer.steps)", "format": "igpt-adamw"])
    // config.json and preprocessor_config.json: the step directory is a Hugging Face ImageGPT
    // model directory too (from_pretrained loads it as it is)
    for (name, data) in try huggingFaceFiles(model: model.config, palette: state.palette, tokenizer: state.tokenizer) { try dir.write(data, to: name) }
    var s = state
    s.checksums = ["model.safetensors": modelCRC, "optimizer.safetensors": optimizerCRC]
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try dir.write(try encoder.encode(s), to: "state.json")
    try dir.commit()
    prune(root: root, keep: keep)
    return dest
  }

  /// Step directories under root, newest first.
  public static func list(runDir: String) -> [String] {
    let root = (runDir as NSString).appendingPathComponent("checkpoints")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    return names.filter { $0.hasPrefix("step-") && $0.count == 13 && Int($0.dropFirst(5)) != nil }
      .sorted(by: >).map { (root as NSString).appendingPathComponent($0) }
  }

  /// The state.json of the newest checkpoint that has a readable one, unverified (cheap: what
  /// the run computes with is needed before its files are loaded).
  public static func newestState(runDir: String) -> State? {
    for path in list(runDir: runDir) {
      guard let d = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent("state.json")),
        let s = try? JSONDecoder().decode(State.self, from: RunConfig.fillingDefaults(stateJSON: d))
      else { continue }
      return s
    }
    return nil
  }

  public static func prune(root: String, keep: Int) {
    let all = list(runDir: (root as NSString).deletingLastPathComponent)
    for old in all.dropFirst(keep) { try? FileManager.default.removeItem(atPath: old) }
  }

  /// Reads and verifies one checkpoint directory; throws a one-line error naming what is wrong.
  public static func read(_ path: String) throws -> Loaded {
    func file(_ name: String) throws -> Data {
      let p = (path as NSString).appendingPathComponent(name)
      guard let d = FileManager.default.contents(atPath: p) else { throw DataError.file(p, "missing or unreadable") }
      return d
    }
    let stateData = try file("state.json")
    let state: State
    do { state = try JSONDecoder().decode(State.self, from: RunConfig.fillingDefaults(stateJSON: stateData)) } catch {
      throw DataError.file((path as NSString).appendingPathComponent("state.json"), "malformed (\(error))")
    }
    var files: [String: MappedFile] = [:]
    for name in ["model.safetensors", "optimizer.safetensors"] {
      let p = (path as NSString).appendingPathComponent(name)
      let f = try MappedFile(path: p)
      let crc = Checksum.crc32(f.bytes)
      guard let want = state.checksums[name] else { throw DataError.file(path, "state.json has no checksum for \(name)") }
      guard crc == want else {
        throw DataError.file(p, String(format: "checksum mismatch (crc32 %08x, state.json %08x): truncated or corrupt", crc, want))
      }
      files[name] = f
    }
    let modelPath = (path as NSString).appendingPathComponent("model.safetensors")
    let model = try IGPT.load(huggingFace: files["model.safetensors"]!.bytes, name: modelPath)
    guard model.config == state.model else { throw DataError.file(modelPath, "model shape disagrees with state.json") }
    let optPath = (path as NSString).appendingPathComponent("optimizer.safetensors")
    let optFile = files["optimizer.safetensors"]!
    let opt = try Safetensors.index(optFile.bytes, name: optPath)
    let bytes = model.parameterCount * 4
    guard let m = opt.tensors["adam.m"], let v = opt.tensors["adam.v"], m.bytes.count == bytes, v.bytes.count == bytes,
      let steps = opt.metadata["steps"].flatMap(Int.init)
    else { throw DataError.file(optPath, "does not hold AdamW moments for this model") }
    return Loaded(path: path, state: state, model: model, optimizerSteps: steps, optimizerFile: optFile, optimizerIndex: opt)
  }

  /// The newest checkpoint of a run that reads back intact; each bad one is reported through
  /// `warn` and skipped. Nil when the run has none.
  public static func newestGood(runDir: String, warn: (String) -> Void) -> Loaded? {
    for path in list(runDir: runDir) {
      do { return try read(path) } catch { warn("skipping checkpoint \(path): \(error)") }
    }
    return nil
  }
}
