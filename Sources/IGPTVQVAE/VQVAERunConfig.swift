import Foundation
import IGPTTraining

/// A VQ-VAE training run's settings (`igpt vqvae train --config F`): YAML sections model, data,
/// quantizer, train and checkpoint. Unknown keys and bad values are one-line errors naming the key.
public struct VQVAERunConfig: Codable, Equatable, Sendable {
  public struct Model: Codable, Equatable, Sendable {
    public var resolution = 32
    public var hiddens = 128
    public var residualHiddens = 32
    public var residualLayers = 2
    public var embeddingDim = 64
    public var codes = 512
    public var downsample = 4

    public init(resolution: Int = 32, hiddens: Int = 128, residualHiddens: Int = 32, residualLayers: Int = 2, embeddingDim: Int = 64,
                codes: Int = 512, downsample: Int = 4) {
      self.resolution = resolution; self.hiddens = hiddens; self.residualHiddens = residualHiddens
      self.residualLayers = residualLayers; self.embeddingDim = embeddingDim; self.codes = codes; self.downsample = downsample
    }

    enum CodingKeys: String, CodingKey {
      case resolution, hiddens, codes, downsample
      case residualHiddens = "residual_hiddens"
      case residualLayers = "residual_layers"
      case embeddingDim = "embedding_dim"
    }
  }

  public struct Data: Codable, Equatable, Sendable {
    /// Any dataset `igpt prepare` reads (a path, or fashion-mnist).
    public var dataset = ""
    /// Centre-crop to a square before resizing.
    public var crop = false
    /// Share of train carved out as val when the dataset ships no val split.
    public var valFraction = 0.1

    enum CodingKeys: String, CodingKey {
      case dataset, crop
      case valFraction = "val_fraction"
    }
  }

  public struct Quantizer: Codable, Equatable, Sendable {
    public var beta = 0.25
    public var decay = 0.99
    /// Codes whose moving-average count falls below this are restarted.
    public var deadBelow = 0.03

    enum CodingKeys: String, CodingKey {
      case beta, decay
      case deadBelow = "dead_below"
    }
  }

  public struct Train: Codable, Equatable, Sendable {
    public var steps = 10_000
    public var batch = 32
    public var lr = 3e-4
    public var warmup = 0
    /// Cosine decay to zero over the steps (false: constant after warmup, as sonnet's example).
    public var cosine = false
    public var seed: UInt64 = 0
    /// 0 = all cores.
    public var threads = 0
    public var logEvery = 100
    /// Validation every N steps (0 = only at the end).
    public var valEvery = 1000
    public var valImages = 1000

    enum CodingKeys: String, CodingKey {
      case steps, batch, lr, warmup, cosine, seed, threads
      case logEvery = "log_every"
      case valEvery = "val_every"
      case valImages = "val_images"
    }
  }

  public var model = Model()
  public var data = Data()
  public var quantizer = Quantizer()
  public var train = Train()
  public var checkpoint = RunConfig.Checkpoint()

  public init() {}

  /// The network's shape for images of `channels` channels.
  public func vqvae(channels: Int) -> VQVAEConfig {
    VQVAEConfig(resolution: model.resolution, channels: channels, hiddens: model.hiddens, residualHiddens: model.residualHiddens,
                residualLayers: model.residualLayers, embeddingDim: model.embeddingDim, codes: model.codes, downsample: model.downsample)
  }

  public static func load(path: String) throws -> VQVAERunConfig {
    try parse(try RunConfig.text(path: path), name: path)
  }

  /// Parses YAML text; `name` prefixes every error.
  public static func parse(_ text: String, name: String = "config") throws -> VQVAERunConfig {
    var c = VQVAERunConfig()
    guard let top = try RunConfig.mapping(yaml: text, name: name) else { throw ConfigError("\(name): empty (data.dataset is needed)") }
    let r = RunConfig.Reader(file: name)
    try r.onlyKeys(top, ["model", "data", "quantizer", "train", "checkpoint"], at: "")
    if let m = try r.section(top, "model") {
      try r.onlyKeys(m, ["resolution", "hiddens", "residual_hiddens", "residual_layers", "embedding_dim", "codes", "downsample"], at: "model")
      c.model.resolution = try r.int(m, "resolution", at: "model") ?? c.model.resolution
      c.model.hiddens = try r.int(m, "hiddens", at: "model") ?? c.model.hiddens
      c.model.residualHiddens = try r.int(m, "residual_hiddens", at: "model") ?? c.model.residualHiddens
      c.model.residualLayers = try r.int(m, "residual_layers", at: "model") ?? c.model.residualLayers
      c.model.embeddingDim = try r.int(m, "embedding_dim", at: "model") ?? c.model.embeddingDim
      c.model.codes = try r.int(m, "codes", at: "model") ?? c.model.codes
      c.model.downsample = try r.int(m, "downsample", at: "model") ?? c.model.downsample
    }
    if let d = try r.section(top, "data") {
      try r.onlyKeys(d, ["dataset", "crop", "val_fraction"], at: "data")
      c.data.dataset = try r.string(d, "dataset", at: "data") ?? c.data.dataset
      c.data.crop = try r.bool(d, "crop", at: "data") ?? c.data.crop
      c.data.valFraction = try r.double(d, "val_fraction", at: "data") ?? c.data.valFraction
    }
    if let q = try r.section(top, "quantizer") {
      try r.onlyKeys(q, ["beta", "decay", "dead_below"], at: "quantizer")
      c.quantizer.beta = try r.double(q, "beta", at: "quantizer") ?? c.quantizer.beta
      c.quantizer.decay = try r.double(q, "decay", at: "quantizer") ?? c.quantizer.decay
      c.quantizer.deadBelow = try r.double(q, "dead_below", at: "quantizer") ?? c.quantizer.deadBelow
    }
    if let t = try r.section(top, "train") {
      try r.onlyKeys(t, ["steps", "batch", "lr", "warmup", "cosine", "seed", "threads", "log_every", "val_every", "val_images"], at: "train")
      c.train.steps = try r.int(t, "steps", at: "train") ?? c.train.steps
      c.train.batch = try r.int(t, "batch", at: "train") ?? c.train.batch
      c.train.lr = try r.double(t, "lr", at: "train") ?? c.train.lr
      c.train.warmup = try r.int(t, "warmup", at: "train") ?? c.train.warmup
      c.train.cosine = try r.bool(t, "cosine", at: "train") ?? c.train.cosine
      if let seed = try r.int(t, "seed", at: "train") {
        guard seed >= 0 else { throw ConfigError("\(name): train.seed must be at least 0 (got \(seed))") }
        c.train.seed = UInt64(seed)
      }
      c.train.threads = try r.int(t, "threads", at: "train") ?? c.train.threads
      c.train.logEvery = try r.int(t, "log_every", at: "train") ?? c.train.logEvery
      c.train.valEvery = try r.int(t, "val_every", at: "train") ?? c.train.valEvery
      c.train.valImages = try r.int(t, "val_images", at: "train") ?? c.train.valImages
    }
    if let k = try r.section(top, "checkpoint") {
      try r.onlyKeys(k, ["every", "keep"], at: "checkpoint")
      c.checkpoint.every = try r.int(k, "every", at: "checkpoint") ?? c.checkpoint.every
      c.checkpoint.keep = try r.int(k, "keep", at: "checkpoint") ?? c.checkpoint.keep
    }
    try c.validate(name: name)
    return c
  }

  /// Range checks, each naming its key.
  public func validate(name: String = "config") throws {
    func check(_ ok: Bool, _ key: String, _ why: String) throws {
      if !ok { throw ConfigError("\(name): \(key) \(why)") }
    }
    try check(!data.dataset.isEmpty, "data.dataset", "is needed (a dataset igpt prepare reads)")
    if let p = vqvae(channels: 3).problem { throw ConfigError("\(name): model: \(p)") }
    try check(quantizer.beta >= 0, "quantizer.beta", "must not be negative (got \(quantizer.beta))")
    try check(quantizer.decay > 0 && quantizer.decay < 1, "quantizer.decay", "must be in (0, 1) (got \(quantizer.decay))")
    try check(quantizer.deadBelow >= 0, "quantizer.dead_below", "must not be negative")
    try check(data.valFraction >= 0 && data.valFraction < 1, "data.val_fraction", "must be in [0, 1) (got \(data.valFraction))")
    try check(train.steps >= 1, "train.steps", "must be at least 1 (got \(train.steps))")
    try check(train.batch >= 1 && train.batch <= 65_536, "train.batch", "must be 1-65536 (got \(train.batch))")
    try check(train.lr > 0 && train.lr < 1, "train.lr", "must be in (0, 1) (got \(train.lr))")
    try check(train.warmup >= 0, "train.warmup", "must not be negative")
    try check(train.threads >= 0 && train.threads <= 1024, "train.threads", "must be 0 (all cores) to 1024")
    try check(train.logEvery >= 1, "train.log_every", "must be at least 1")
    try check(train.valEvery >= 0, "train.val_every", "must not be negative")
    try check(train.valImages >= 1, "train.val_images", "must be at least 1")
    try check(checkpoint.every >= 1, "checkpoint.every", "must be at least 1")
    try check(checkpoint.keep >= 1, "checkpoint.keep", "must be at least 1")
  }
}
