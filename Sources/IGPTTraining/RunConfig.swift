import Foundation
import IGPTKernels
import IGPTModel
import Yams

/// A training run's settings, read from a YAML file with sections model, data, train and
/// checkpoint. Unknown keys and bad values are errors that name the key.
public struct RunConfig: Codable, Equatable, Sendable {
  public struct Model: Codable, Equatable, Sendable {
    public var layers = 4
    public var embd = 128
    public var heads = 4
    public var objective: ModelConfig.Objective = .ar
    /// Sequence length and palette size come from the token store; set here they must agree.
    public var seq: Int?
    public var vocab: Int?
  }

  public struct Data: Codable, Equatable, Sendable {
    /// Token store directory (igpt prepare --out).
    public var store = ""
    /// Pretraining augmentation of the train images (nil: none; omitted from hashes then, so
    /// runs without it keep their identity).
    public var augment: Augmentation?
  }

  public struct Train: Codable, Equatable, Sendable {
    public var steps = 1000
    /// Images per optimizer step (the global batch).
    public var batch = 32
    /// Images per gradient computation; batch must divide by it.
    public var microbatch = 32
    public var lr = 0.003
    public var warmup = 100
    public var weightDecay = 0.0
    public var beta1 = 0.9
    public var beta2 = 0.95
    /// Global gradient-norm clip (0 = off).
    public var clip = 1.0
    public var seed: UInt64 = 0
    /// 0 = all cores.
    public var threads = 0
    public var logEvery = 10
    /// Validation loss every N steps (0 = only at the end).
    public var valEvery = 200
    /// Validation images per evaluation (from the start of the val split).
    public var valImages = 512
    /// Keep one layer's activations and recompute the rest in backward: about 1/L of the
    /// activation memory for a third more compute, the same bytes. For models that would not
    /// fit otherwise (igpt-l); local to each host.
    public var recompute = false
  }

  public struct Checkpoint: Codable, Equatable, Sendable {
    public var every = 500
    public var keep = 3
    public init() {}
  }

  /// How a coordinator and its workers talk (igpt coordinator / igpt worker).
  public struct Cluster: Codable, Equatable, Sendable {
    /// Gradient codec: lossless (byte-shuffle + LZ4) or bf16 (error feedback on each worker).
    public var codec: GradientCodecKind = .lossless
    /// Seconds between application heartbeats, both ways.
    public var heartbeatInterval = 1.0
    /// A peer silent this many heartbeat intervals is dead.
    public var heartbeatMisses = 5
    /// Seconds a microbatch may stay out before it is also handed to another worker
    /// (at least 5x the slowest microbatch seen so far).
    public var taskTimeout = 60.0
    /// CURVE key files: this process's secret key, the coordinator's public key (workers and
    /// clients), and the allow-list of client public keys (coordinator). Flags override them.
    public var secretKey: String?
    public var serverKey: String?
    public var allow: String?
    /// strict: every worker computes with the run's numerics (pinned to it, or refused); any:
    /// every worker is accepted and a run that mixes numerics is marked not reproducible.
    public var numerics: NumericsPolicy = .strict
    /// The OpenBLAS core type the run computes with (e.g. Haswell, which every AVX2 and
    /// AVX-512 host runs); nil = the coordinator's own.
    public var openblasCore: String?

    public init() {}

    /// Every field optional, so state.json files written before a field existed still read.
    public init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      codec = try c.decodeIfPresent(GradientCodecKind.self, forKey: .codec) ?? codec
      heartbeatInterval = try c.decodeIfPresent(Double.self, forKey: .heartbeatInterval) ?? heartbeatInterval
      heartbeatMisses = try c.decodeIfPresent(Int.self, forKey: .heartbeatMisses) ?? heartbeatMisses
      taskTimeout = try c.decodeIfPresent(Double.self, forKey: .taskTimeout) ?? taskTimeout
      secretKey = try c.decodeIfPresent(String.self, forKey: .secretKey)
      serverKey = try c.decodeIfPresent(String.self, forKey: .serverKey)
      allow = try c.decodeIfPresent(String.self, forKey: .allow)
      numerics = try c.decodeIfPresent(NumericsPolicy.self, forKey: .numerics) ?? numerics
      openblasCore = try c.decodeIfPresent(String.self, forKey: .openblasCore)
    }
  }

  /// Whether a cluster run admits workers whose numerics differ from the run's.
  public enum NumericsPolicy: String, Codable, Sendable, CaseIterable {
    case strict, any
  }

  /// Linear-probe jobs a coordinator runs on a schedule (and the defaults of submitted ones).
  public struct Probes: Codable, Equatable, Sendable {
    /// Queue a probe every N steps (0 = only when submitted).
    public var every = 0
    /// all, mid, or a list such as "1,4,7".
    public var layers = "mid"
    /// Train images the probe fits on (from the start of the train split).
    public var trainImages = 5000
    /// Val and test images (from the start of those splits).
    public var evalImages = 2000
    /// Largest share of the workers' compute time probe feature extraction may take.
    public var share = 0.25
    /// Low-data probes: this many train images per class (nil = all trainImages).
    public var labelsPerClass: Int?
    /// Also probe the concatenation of this many layers around the best one (0 = off).
    public var concat = 0
    /// Also fit the raw-pixel baseline.
    public var rawPixels = false
    /// BERT models: average features over this many random masks.
    public var masks = 1
    /// Seed of the low-data selection and the BERT masks (`igpt probe run --seed` draws the same).
    public var seed: UInt64 = 0
    /// L-BFGS iterations per L2 strength (`igpt probe run --max-iterations`; LinearProbe.defaultMaxIterations).
    public var maxIterations = 300

    public init() {}

    public init(from decoder: Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      every = try c.decodeIfPresent(Int.self, forKey: .every) ?? every
      layers = try c.decodeIfPresent(String.self, forKey: .layers) ?? layers
      trainImages = try c.decodeIfPresent(Int.self, forKey: .trainImages) ?? trainImages
      evalImages = try c.decodeIfPresent(Int.self, forKey: .evalImages) ?? evalImages
      share = try c.decodeIfPresent(Double.self, forKey: .share) ?? share
      labelsPerClass = try c.decodeIfPresent(Int.self, forKey: .labelsPerClass)
      concat = try c.decodeIfPresent(Int.self, forKey: .concat) ?? concat
      rawPixels = try c.decodeIfPresent(Bool.self, forKey: .rawPixels) ?? rawPixels
      masks = try c.decodeIfPresent(Int.self, forKey: .masks) ?? masks
      seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
      maxIterations = try c.decodeIfPresent(Int.self, forKey: .maxIterations) ?? maxIterations
    }
  }

  /// Gradient encodings on the wire.
  public enum GradientCodecKind: String, Codable, Sendable, CaseIterable {
    case lossless, bf16
  }

  public var model = Model()
  public var data = Data()
  public var train = Train()
  public var checkpoint = Checkpoint()
  public var cluster = Cluster()
  public var probes = Probes()

  public init() {}

  /// Sections missing from older state.json files take their defaults.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    model = try c.decodeIfPresent(Model.self, forKey: .model) ?? Model()
    data = try c.decodeIfPresent(Data.self, forKey: .data) ?? Data()
    train = try c.decodeIfPresent(Train.self, forKey: .train) ?? Train()
    checkpoint = try c.decodeIfPresent(Checkpoint.self, forKey: .checkpoint) ?? Checkpoint()
    cluster = try c.decodeIfPresent(Cluster.self, forKey: .cluster) ?? Cluster()
    probes = try c.decodeIfPresent(Probes.self, forKey: .probes) ?? Probes()
  }

  /// state.json bytes whose `config` lacks settings added since it was written, with those
  /// settings filled in at their defaults (unchanged when it is not such a JSON object).
  public static func fillingDefaults(stateJSON data: Foundation.Data) -> Foundation.Data {
    guard var state = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let config = state["config"] as? [String: Any],
      let defaults = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(RunConfig()))) as? [String: Any]
    else { return data }
    func merge(_ base: [String: Any], _ over: [String: Any]) -> [String: Any] {
      var out = base
      for (k, v) in over {
        if let b = base[k] as? [String: Any], let o = v as? [String: Any] { out[k] = merge(b, o) } else { out[k] = v }
      }
      return out
    }
    state["config"] = merge(defaults, config)
    return (try? JSONSerialization.data(withJSONObject: state)) ?? data
  }

  /// Parses YAML text; `name` (the file) prefixes every error.
  public static func parse(_ text: String, name: String = "config") throws -> RunConfig {
    var c = RunConfig()
    guard let top = try mapping(yaml: text, name: name) else { return c }
    let r = Reader(file: name)
    try r.onlyKeys(top, ["model", "data", "train", "checkpoint", "cluster", "probes"], at: "")
    if let m = try r.section(top, "model") {
      try r.onlyKeys(m, ["layers", "embd", "heads", "objective", "seq", "vocab"], at: "model")
      c.model.layers = try r.int(m, "layers", at: "model") ?? c.model.layers
      c.model.embd = try r.int(m, "embd", at: "model") ?? c.model.embd
      c.model.heads = try r.int(m, "heads", at: "model") ?? c.model.heads
      c.model.seq = try r.int(m, "seq", at: "model")
      c.model.vocab = try r.int(m, "vocab", at: "model")
      if let o = try r.string(m, "objective", at: "model") {
        guard let obj = ModelConfig.Objective(rawValue: o) else {
          throw ConfigError("\(name): model.objective must be ar or bert (got \(o))")
        }
        c.model.objective = obj
      }
    }
    if let d = try r.section(top, "data") {
      try r.onlyKeys(d, ["store", "augment"], at: "data")
      c.data.store = try r.string(d, "store", at: "data") ?? c.data.store
      if let a = try r.section(d, "augment", at: "data") {
        try r.onlyKeys(a, ["translate", "flip"], at: "data.augment")
        let augment = Augmentation(translate: try r.int(a, "translate", at: "data.augment") ?? 0,
                                   flip: try r.bool(a, "flip", at: "data.augment") ?? false)
        c.data.augment = augment == Augmentation() ? nil : augment
      }
    }
    if let t = try r.section(top, "train") {
      try r.onlyKeys(t, ["steps", "batch", "microbatch", "lr", "warmup", "weight_decay", "beta1", "beta2",
                         "clip", "seed", "threads", "log_every", "val_every", "val_images", "recompute"], at: "train")
      c.train.steps = try r.int(t, "steps", at: "train") ?? c.train.steps
      c.train.batch = try r.int(t, "batch", at: "train") ?? c.train.batch
      c.train.microbatch = try r.int(t, "microbatch", at: "train") ?? c.train.batch
      c.train.lr = try r.double(t, "lr", at: "train") ?? c.train.lr
      c.train.warmup = try r.int(t, "warmup", at: "train") ?? c.train.warmup
      c.train.weightDecay = try r.double(t, "weight_decay", at: "train") ?? c.train.weightDecay
      c.train.beta1 = try r.double(t, "beta1", at: "train") ?? c.train.beta1
      c.train.beta2 = try r.double(t, "beta2", at: "train") ?? c.train.beta2
      c.train.clip = try r.double(t, "clip", at: "train") ?? c.train.clip
      if let seed = try r.int(t, "seed", at: "train") {
        guard seed >= 0 else { throw ConfigError("\(name): train.seed must be at least 0 (got \(seed))") }
        c.train.seed = UInt64(seed)
      }
      c.train.threads = try r.int(t, "threads", at: "train") ?? c.train.threads
      c.train.logEvery = try r.int(t, "log_every", at: "train") ?? c.train.logEvery
      c.train.valEvery = try r.int(t, "val_every", at: "train") ?? c.train.valEvery
      c.train.valImages = try r.int(t, "val_images", at: "train") ?? c.train.valImages
      c.train.recompute = try r.bool(t, "recompute", at: "train") ?? c.train.recompute
    } else {
      c.train.microbatch = c.train.batch
    }
    if let k = try r.section(top, "checkpoint") {
      try r.onlyKeys(k, ["every", "keep"], at: "checkpoint")
      c.checkpoint.every = try r.int(k, "every", at: "checkpoint") ?? c.checkpoint.every
      c.checkpoint.keep = try r.int(k, "keep", at: "checkpoint") ?? c.checkpoint.keep
    }
    if let k = try r.section(top, "cluster") {
      try r.onlyKeys(k, ["codec", "heartbeat_interval", "heartbeat_misses", "task_timeout", "secret_key", "server_key", "allow",
                         "numerics", "openblas_core"], at: "cluster")
      if let n = try r.string(k, "numerics", at: "cluster") {
        guard let policy = NumericsPolicy(rawValue: n) else {
          throw ConfigError("\(name): cluster.numerics must be strict or any (got \(n))")
        }
        c.cluster.numerics = policy
      }
      c.cluster.openblasCore = try r.string(k, "openblas_core", at: "cluster")
      if let core = c.cluster.openblasCore, OpenBLASCoreType.requiredFlags[core] == nil {
        throw ConfigError("\(name): cluster.openblas_core must be one of \(OpenBLASCoreType.requiredFlags.keys.sorted().joined(separator: ", ")) (got \(core))")
      }
      c.cluster.secretKey = try r.string(k, "secret_key", at: "cluster")
      c.cluster.serverKey = try r.string(k, "server_key", at: "cluster")
      c.cluster.allow = try r.string(k, "allow", at: "cluster")
      if let codec = try r.string(k, "codec", at: "cluster") {
        guard let kind = GradientCodecKind(rawValue: codec) else {
          throw ConfigError("\(name): cluster.codec must be lossless or bf16 (got \(codec))")
        }
        c.cluster.codec = kind
      }
      c.cluster.heartbeatInterval = try r.double(k, "heartbeat_interval", at: "cluster") ?? c.cluster.heartbeatInterval
      c.cluster.heartbeatMisses = try r.int(k, "heartbeat_misses", at: "cluster") ?? c.cluster.heartbeatMisses
      c.cluster.taskTimeout = try r.double(k, "task_timeout", at: "cluster") ?? c.cluster.taskTimeout
    }
    if let k = try r.section(top, "probes") {
      try r.onlyKeys(k, ["every", "layers", "train_images", "eval_images", "share", "labels_per_class", "concat",
                         "raw_pixels", "masks", "seed", "max_iterations"], at: "probes")
      c.probes.every = try r.int(k, "every", at: "probes") ?? c.probes.every
      if let l = k["layers"] { c.probes.layers = "\(l)" }
      c.probes.trainImages = try r.int(k, "train_images", at: "probes") ?? c.probes.trainImages
      c.probes.evalImages = try r.int(k, "eval_images", at: "probes") ?? c.probes.evalImages
      c.probes.share = try r.double(k, "share", at: "probes") ?? c.probes.share
      c.probes.labelsPerClass = try r.int(k, "labels_per_class", at: "probes") ?? c.probes.labelsPerClass
      c.probes.concat = try r.int(k, "concat", at: "probes") ?? c.probes.concat
      c.probes.rawPixels = try r.bool(k, "raw_pixels", at: "probes") ?? c.probes.rawPixels
      c.probes.masks = try r.int(k, "masks", at: "probes") ?? c.probes.masks
      c.probes.maxIterations = try r.int(k, "max_iterations", at: "probes") ?? c.probes.maxIterations
      if let seed = try r.int(k, "seed", at: "probes") {
        guard seed >= 0 else { throw ConfigError("\(name): probes.seed must be at least 0 (got \(seed))") }
        c.probes.seed = UInt64(seed)
      }
    }
    try c.validate(name: name)
    return c
  }

  /// The top-level mapping of a bounded YAML document (nil when it is empty); every error one
  /// line prefixed by `name`. Run configs and VQ-VAE configs read through it.
  public static func mapping(yaml text: String, name: String) throws -> [String: Any]? {
    try checkBounded(text, name: name)
    let root: Any?
    do {
      let node = try Yams.compose(yaml: text)
      if let node, let bad = Self.nonScalarKey(node) { throw ConfigError("\(name): line \(bad): a mapping key must be a plain name") }
      root = node?.any  // (Yams traps on keys that are not scalars: checked above)
    } catch let e as ConfigError {
      throw e
    } catch {
      throw ConfigError("\(name): not valid YAML (\(String(describing: error).split(separator: "\n").first ?? ""))")
    }
    guard let top = root as? [String: Any] else {
      if root == nil { return nil }
      throw ConfigError("\(name): the top level must be a mapping of sections")
    }
    return top
  }

  /// The line of the first mapping key that is itself a mapping or a sequence, or nil.
  static func nonScalarKey(_ node: Node) -> Int? {
    if let m = node.mapping {
      for (k, v) in m {
        if k.scalar == nil { return k.mark?.line ?? 0 }
        if let bad = nonScalarKey(v) { return bad }
      }
    } else if let s = node.sequence {
      for v in s { if let bad = nonScalarKey(v) { return bad } }
    }
    return nil
  }

  /// The deepest nesting a run config may have.
  public static let maxNesting = 16

  /// The most bytes a run config may have (one is a few hundred).
  public static let maxConfigBytes = 1 << 20

  /// Refuses, before YAML expands anything, a document too large or with anchors and aliases
  /// (nested aliases grow exponentially as they expand; a run config never needs them).
  static func checkBounded(_ text: String, name: String) throws {
    guard text.utf8.count <= maxConfigBytes else {
      throw ConfigError("\(name): \(text.utf8.count) bytes is more than a run config may have (\(maxConfigBytes))")
    }
    // (Yams traps on integers that overflow as it reads them, YAML 1.1's base-60 "1:2:3" too)
    if let r = text.range(of: "[0-9]{30,}|(^|[\\s\\[{,])[0-9_]+(:[0-9_]+)+(?=[\\s,\\]}]|$)", options: .regularExpression) {
      throw ConfigError("\(name): \(text[r].prefix(40)) is not a number a run config can hold")
    }
    var depth = 0
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      var quote: Character?
      var previous: Character = " "
      for ch in line {
        if let q = quote {
          if ch == q { quote = nil }
        } else if ch == "\"" || ch == "'" {
          quote = ch
        } else if ch == "#" && " \t".contains(previous) {
          break
        } else if (ch == "&" || ch == "*") && " \t,[{:-".contains(previous) {
          throw ConfigError("\(name):\(n + 1): YAML anchors and aliases (& and *) are not accepted in run configs")
        } else if ch == "[" || ch == "{" {
          depth += 1
          // (deep nesting overflows the YAML parser's stack; a run config nests twice)
          if depth > maxNesting { throw ConfigError("\(name):\(n + 1): nested more than \(maxNesting) levels deep") }
        } else if ch == "]" || ch == "}" {
          depth = max(0, depth - 1)
        }
        previous = ch
      }
      if line.prefix { $0 == " " }.count > 2 * maxNesting { throw ConfigError("\(name):\(n + 1): indented more than \(maxNesting) levels deep") }
    }
  }

  /// Reads and parses a YAML file.
  public static func load(path: String) throws -> RunConfig {
    try parse(try text(path: path), name: path)
  }

  /// A config file's text (refused when larger than a config may be).
  public static func text(path: String) throws -> String {
    if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxConfigBytes {
      throw ConfigError("\(path): \(size) bytes is more than a run config may have (\(maxConfigBytes))")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigError("\(path): cannot be read (missing or not a file)")
    }
    return String(decoding: data, as: UTF8.self)
  }

  /// Range checks, each naming its key.
  public func validate(name: String = "config") throws {
    func check(_ ok: Bool, _ key: String, _ why: String) throws {
      if !ok { throw ConfigError("\(name): \(key) \(why)") }
    }
    try check(model.layers >= 1, "model.layers", "must be at least 1 (got \(model.layers))")
    try check(model.embd >= 1, "model.embd", "must be at least 1 (got \(model.embd))")
    try check(model.heads >= 1, "model.heads", "must be at least 1 (got \(model.heads))")
    try check(model.embd % max(1, model.heads) == 0, "model.embd", "(\(model.embd)) must be divisible by model.heads (\(model.heads))")
    try check(train.steps >= 1, "train.steps", "must be at least 1 (got \(train.steps))")
    try check(train.batch >= 1, "train.batch", "must be at least 1 (got \(train.batch))")
    try check(train.microbatch >= 1 && train.batch % train.microbatch == 0, "train.microbatch",
              "(\(train.microbatch)) must be at least 1 and divide train.batch (\(train.batch))")
    try check(train.lr > 0 && train.lr.isFinite, "train.lr", "must be positive (got \(train.lr))")
    try check(train.warmup >= 0, "train.warmup", "must be at least 0 (got \(train.warmup))")
    try check(train.weightDecay >= 0, "train.weight_decay", "must be at least 0")
    try check((0..<1).contains(train.beta1), "train.beta1", "must be in [0, 1) (got \(train.beta1))")
    try check((0..<1).contains(train.beta2), "train.beta2", "must be in [0, 1) (got \(train.beta2))")
    try check(train.clip >= 0, "train.clip", "must be at least 0 (0 = off)")
    try check(train.threads >= 0, "train.threads", "must be at least 0 (0 = all cores)")
    try check(train.logEvery >= 1, "train.log_every", "must be at least 1")
    try check(train.valEvery >= 0, "train.val_every", "must be at least 0 (0 = only at the end)")
    try check(train.valImages >= 1, "train.val_images", "must be at least 1")
    try check(checkpoint.every >= 1, "checkpoint.every", "must be at least 1 (got \(checkpoint.every))")
    try check(cluster.heartbeatInterval > 0 && cluster.heartbeatInterval <= 60, "cluster.heartbeat_interval",
              "must be in (0, 60] seconds (got \(cluster.heartbeatInterval))")
    try check(cluster.heartbeatMisses >= 2, "cluster.heartbeat_misses", "must be at least 2 (got \(cluster.heartbeatMisses))")
    try check(cluster.taskTimeout > 0, "cluster.task_timeout", "must be positive seconds (got \(cluster.taskTimeout))")
    try check(probes.every >= 0, "probes.every", "must be at least 0 (0 = only submitted probes)")
    try check(probes.trainImages >= 10, "probes.train_images", "must be at least 10")
    try check(probes.evalImages >= 10, "probes.eval_images", "must be at least 10")
    try check(probes.share > 0 && probes.share <= 1, "probes.share", "must be in (0, 1] (got \(probes.share))")
    try check((probes.labelsPerClass ?? 1) >= 1, "probes.labels_per_class", "must be at least 1")
    try check(probes.concat >= 0, "probes.concat", "must be at least 0 (0 = off)")
    try check(probes.masks >= 1 && probes.masks <= 16, "probes.masks", "must be in 1...16")
    try check(probes.maxIterations >= 1, "probes.max_iterations", "must be at least 1")
    try check((0...8).contains(data.augment?.translate ?? 0), "data.augment.translate", "must be in 0...8 pixels (got \(data.augment?.translate ?? 0))")
    try check(checkpoint.keep >= 1, "checkpoint.keep", "must be at least 1 (got \(checkpoint.keep))")
  }

  /// The model shape for a store with this sequence length and palette size; an explicit
  /// model.seq or model.vocab that disagrees is an error.
  public func modelConfig(storeSequenceLength seq: Int, storeVocab vocab: Int) throws -> ModelConfig {
    if let s = model.seq, s != seq {
      throw ConfigError("model.seq is \(s) but the token store has \(seq) tokens per image")
    }
    if let v = model.vocab, v != vocab {
      throw ConfigError("model.vocab is \(v) but the token store's palette has \(vocab) colours")
    }
    let m = ModelConfig(layers: model.layers, embd: model.embd, heads: model.heads, seq: seq, vocab: vocab,
                        objective: model.objective)
    do { try m.validate() } catch { throw ConfigError("model: \(error)") }
    return m
  }

  /// Typed lookups with errors that name the key.
  public struct Reader {
    let file: String
    public init(file: String) { self.file = file }
    public func onlyKeys(_ d: [String: Any], _ allowed: Set<String>, at path: String) throws {
      for key in d.keys.sorted() where !allowed.contains(key) {
        let full = path.isEmpty ? key : "\(path).\(key)"
        throw ConfigError("\(file): unknown key '\(full)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
      }
    }
    public func section(_ d: [String: Any], _ key: String, at path: String = "") throws -> [String: Any]? {
      guard let v = d[key] else { return nil }
      if v is NSNull { return nil }
      let full = path.isEmpty ? key : "\(path).\(key)"
      guard let m = v as? [String: Any] else { throw ConfigError("\(file): \(full) must be a mapping") }
      return m
    }
    public func int(_ d: [String: Any], _ key: String, at path: String) throws -> Int? {
      guard let v = d[key] else { return nil }
      if let i = v as? Int { return i }
      throw ConfigError("\(file): \(path).\(key) must be an integer (got \(v))")
    }
    public func double(_ d: [String: Any], _ key: String, at path: String) throws -> Double? {
      guard let v = d[key] else { return nil }
      if let x = v as? Double { return x }
      if let i = v as? Int { return Double(i) }
      throw ConfigError("\(file): \(path).\(key) must be a number (got \(v))")
    }
    public func bool(_ d: [String: Any], _ key: String, at path: String) throws -> Bool? {
      guard let v = d[key] else { return nil }
      if let b = v as? Bool { return b }
      throw ConfigError("\(file): \(path).\(key) must be true or false (got \(v))")
    }
    public func string(_ d: [String: Any], _ key: String, at path: String) throws -> String? {
      guard let v = d[key] else { return nil }
      if let s = v as? String { return s }
      throw ConfigError("\(file): \(path).\(key) must be a string (got \(v))")
    }
  }
}

/// A run config that cannot be used, with a one-line reason naming the key.
public struct ConfigError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
