import Foundation
import IGPTCluster
import IGPTData
import IGPTModel
import IGPTTraining
import IGPTVQVAE

/// The parsers of outside bytes, one case each, fed by the libFuzzer binary (`make fuzz`,
/// Tests/Fuzz) and by the regression test that replays every input a fuzzer ever crashed on.
/// Any thrown error is accepted: only a crash, a trap or a sanitizer report is a finding.
public enum Harness: String, CaseIterable, Sendable {
  case message, codec, safetensors, npy, idx, cifar, image, config, state, probejobs, manifest, hfconfig, preprocessor
  case hfindex, store, curvekey, allowlist, zap, tfevents, metrics, vqvaeconfig, vqvaecheckpoint

  /// The harness IGPT_FUZZ_TARGET names (exits with the list when it names none).
  public static let chosen: Harness = {
    let name = ProcessInfo.processInfo.environment["IGPT_FUZZ_TARGET"] ?? ""
    guard let h = Harness(rawValue: name) else {
      FileHandle.standardError.write(Data("IGPT_FUZZ_TARGET must be one of: \(allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
      exit(2)
    }
    return h
  }()

  /// A scratch file for the parsers that read paths (in memory: /dev/shm when there is one).
  static let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return (dir as NSString).appendingPathComponent("igpt-fuzz-\(getpid())")
  }()

  /// Feeds the bytes to the parser; true when it accepted them (seeds are meant to be accepted).
  @discardableResult
  public func run(_ d: Data) -> Bool {
    switch self {
    case .message: return Self.message(d)
    case .codec: return Self.codec(d)
    case .safetensors: return (try? Safetensors.decode(d)) != nil
    case .npy: return [(try? Npy.decode(d)) != nil, (try? Npy.decodeFloats(d)) != nil].contains(true)
    case .idx: return Self.viaFile(d) { (try? IDXReader.read($0)) != nil }
    case .cifar: return Self.viaFile(d) { p in [1, 2].map { (try? CIFARReader.readBatch(p, labelBytes: $0)) != nil }.contains(true) }
    case .image: return Self.viaFile(d, suffix: ".png") { p in [1, 3].map { (try? ImageFolderReader.decode(p, channels: $0)) != nil }.contains(true) }
    case .config: return (try? RunConfig.parse(String(decoding: d, as: UTF8.self))) != nil
    case .state: return (try? JSONDecoder().decode(Checkpoint.State.self, from: d)) != nil
    case .probejobs: return (try? JSONDecoder().decode([ProbeJob].self, from: d)) != nil
    case .manifest: return (try? JSONDecoder().decode(TokenStoreManifest.self, from: d)) != nil
    case .hfconfig: return (try? JSONDecoder().decode(HFConfig.self, from: d)).map { (try? $0.modelConfig(name: "fuzz")) != nil } ?? false
    case .preprocessor: return Self.viaFile(d, suffix: ".json") { (try? HFImageProcessorConfig.load($0)) != nil }
    case .hfindex: return (try? HFDirectory.shardFiles(index: d, name: "fuzz")) != nil
    case .store: return Self.store(d)
    case .curvekey: return Self.viaFile(d) { (try? CurveKey.load($0, secret: false)) != nil }
    case .allowlist: return Self.viaFile(d) { (try? ZAPHandler.readAllowList($0)) != nil }
    case .zap: return ZAPHandler.decide(Self.frames(d), allowed: [Self.allowedKey]) != nil
    case .tfevents: return TensorBoardLog.keptPrefix(d, throughStep: 10) > 0
    case .metrics: return MetricsLog.keptPrefix(d, throughStep: 10) > 0
    case .vqvaeconfig: return (try? VQVAERunConfig.parse(String(decoding: d, as: UTF8.self))) != nil
    case .vqvaecheckpoint: return Self.vqvaeCheckpoint(d)
    }
  }

  /// A message, then its meta as every type, then a task's body.
  static func message(_ d: Data) -> Bool {
    guard let m = try? Message.decode(d) else { return false }
    _ = try? m.decodeMeta(Wire.Hello.self)
    _ = try? m.decodeMeta(Wire.Welcome.self)
    _ = try? m.decodeMeta(Wire.Refuse.self)
    _ = try? m.decodeMeta(Wire.Ready.self)
    _ = try? m.decodeMeta(Wire.Result.self)
    _ = try? m.decodeMeta(Wire.ProbeSubmit.self)
    _ = try? m.decodeMeta(Wire.ProbeList.self)
    _ = try? m.decodeMeta(Wire.Done.self)
    _ = try? m.decodeMeta(Wire.ShardHello.self)
    _ = try? m.decodeMeta(Wire.ShardWelcome.self)
    _ = try? m.decodeMeta(Wire.ShardState.self)
    _ = try? m.decodeMeta(Wire.Push.self)
    _ = try? m.decodeMeta(Wire.Pushed.self)
    _ = try? m.decodeMeta(Wire.Partials.self)
    _ = try? m.decodeMeta(Wire.Update.self)
    _ = try? m.decodeMeta(Wire.Updated.self)
    _ = m.body.doubles(count: m.body.count / 8)
    if let t = try? m.decodeMeta(Wire.Task.self) { _ = try? t.decodeMicrobatches(m.body, vocab: 16) }
    return true
  }

  /// A float payload of the count its first two bytes say (at most 65,535 values).
  static func codec(_ d: Data) -> Bool {
    guard d.count >= 2 else { return false }
    let n = Int(d[d.startIndex]) | Int(d[d.startIndex + 1]) << 8
    var out = [Float](repeating: 0, count: max(n, 1))
    return out.withUnsafeMutableBufferPointer { o in (try? GradientCodec.decode(Data(d.dropFirst(2)), into: o.baseAddress!, count: n)) != nil }
  }

  /// A token store whose manifest is the input, beside one fixed shard `s.bin` (2 images of
  /// 4 one-byte tokens, labelled): opened, verified, every image read.
  static func store(_ d: Data) -> Bool {
    let dir = scratch + "-store-\(pthread_self())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    FileManager.default.createFile(atPath: dir + "/s.bin", contents: storeShard)
    FileManager.default.createFile(atPath: dir + "/manifest.json", contents: d)
    guard let store = try? TokenStore(path: dir) else { return false }
    var read = false
    for name in store.splitNames {
      guard let split = try? store.split(name), (try? split.verify()) != nil else { continue }
      for i in 0..<min(split.count, 16) { read = (try? split.tokens(i)) != nil && (try? split.label(i)) != nil && (try? split.sourceIndex(i)) != nil }
    }
    return read
  }

  /// A VQ-VAE checkpoint whose state.json is the input, beside the fixed weights and moments of
  /// a tiny VQ-VAE (`vqvaeTemplate`): read and verified, then one image decoded from codes.
  static func vqvaeCheckpoint(_ d: Data) -> Bool {
    let dir = scratch + "-vqvae-\(pthread_self())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for name in ["vqvae.safetensors", "optimizer.safetensors"] {
      try? FileManager.default.copyItem(atPath: vqvaeTemplate + "/" + name, toPath: dir + "/" + name)
    }
    FileManager.default.createFile(atPath: dir + "/state.json", contents: d)
    guard let loaded = try? VQVAECheckpoint.read(dir) else { return false }
    let codes = [Int32](repeating: 0, count: loaded.model.latentsPerImage)
    _ = codes.withUnsafeBufferPointer { loaded.model.decode($0.baseAddress!, batch: 1) }
    return true
  }

  /// The fixed VQ-VAE checkpoint (8x8 grey, 2x2 codes of 4) the checkpoint harness reads, written
  /// once per process from seed 1; its state.json is the harness's seed.
  public static let vqvaeTemplate: String = {
    let run = scratch + "-vqvae-template"
    try? FileManager.default.removeItem(atPath: run)
    var c = VQVAERunConfig()
    c.data.dataset = "fuzz"
    c.model = .init(resolution: 8, hiddens: 4, residualHiddens: 2, residualLayers: 1, embeddingDim: 2, codes: 4, downsample: 4)
    let model = try! VQVAE(config: c.vqvae(channels: 1))
    model.initialize(seed: 1)
    let zero = [Float](repeating: 0, count: model.parameterCount)
    let state = VQVAECheckpoint.State(step: 0, config: c, model: model.config, dataset: "fuzz", variance: 1, checksums: [:], loss: nil, eval: nil)
    return try! VQVAECheckpoint.write(runDir: run, state: state, model: model, m: zero, v: zero, keep: 1)
  }()

  /// The shard the store harness's seed manifest describes.
  static let storeShard = TokenShard.encode(tokens: [0, 1, 2, 3, 3, 2, 1, 0], tokenBytes: 1, sequenceLength: 4,
                                            labels: [0, 1], sourceIndices: [0, 1])

  /// A fixed allowed key for the ZAP harness.
  static let allowedKey = CurveKey(z85: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")!

  /// Frames from bytes: each a length byte, then that many bytes.
  static func frames(_ d: Data) -> [Data] {
    var out: [Data] = []
    var at = d.startIndex
    while at < d.endIndex {
      let n = Int(d[at])
      let end = min(d.endIndex, at + 1 + n)
      out.append(Data(d[(at + 1)..<end]))
      at = end
    }
    return out
  }

  /// (one file per harness and thread: the regression test replays harnesses in parallel)
  static func viaFile(_ d: Data, suffix: String = "", _ body: (String) -> Bool) -> Bool {
    let path = scratch + "-\(pthread_self())" + suffix
    FileManager.default.createFile(atPath: path, contents: d)
    defer { unlink(path) }
    return body(path)
  }
}
