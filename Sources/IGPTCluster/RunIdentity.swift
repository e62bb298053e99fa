import Foundation
import IGPTData
import IGPTModel
import IGPTTraining

/// What identifies a cluster run to its workers: the run hash every message carries, and the
/// settings a worker's own config must share with the coordinator's.
enum RunIdentity {
  /// FNV-1a over the run's settings, model shape and tokenizer (the palette, or the VQ-VAE a
  /// latent store was encoded with): messages of another run are refused.
  static func runHash(config: RunConfig, model: ModelConfig, palette: [[Float]], tokenizer: TokenStoreManifest.Tokenizer? = nil) -> UInt64 {
    struct Identity: Encodable {
      var config: RunConfig
      var model: ModelConfig
      var palette: [[Float]]
      /// Only for VQ-VAE stores (palette stores hash as they did before tokenizers were named).
      var tokenizer: TokenStoreManifest.Tokenizer?
    }
    let e = JSONEncoder()
    e.outputFormatting = .sortedKeys
    let named = tokenizer?.kind == .vqvae ? tokenizer : nil
    let bytes = (try? e.encode(Identity(config: sharedSettings(config), model: model, palette: palette, tokenizer: named))) ?? Data()
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01B3
    }
    return h
  }

  /// The config without what is local to one host or to the coordinator alone (key files, the
  /// store's path, the checkpoint and probe schedules).
  static func sharedSettings(_ config: RunConfig) -> RunConfig {
    var c = config
    c.cluster.secretKey = nil
    c.cluster.serverKey = nil
    c.cluster.allow = nil
    c.data.store = ""
    c.checkpoint = RunConfig.Checkpoint()
    c.probes = RunConfig.Probes()
    c.train.recompute = false  // memory, not bytes (the welcome passes it on)
    return c
  }

  /// The first setting that makes a worker's config incompatible with the coordinator's, or nil.
  static func difference(mine: RunConfig, theirs: RunConfig) -> String? {
    func flat(_ c: RunConfig) -> [String: String] {
      var c = sharedSettings(c)
      c.train.threads = 0
      c.train.logEvery = 1
      c.train.steps = 1
      c.model.seq = nil
      c.model.vocab = nil
      let e = JSONEncoder()
      e.outputFormatting = .sortedKeys
      guard let d = try? e.encode(c), let o = try? JSONSerialization.jsonObject(with: d) as? [String: [String: Any]] else { return [:] }
      var out: [String: String] = [:]
      for (section, values) in o { for (k, v) in values { out["\(section).\(k)"] = "\(v)" } }
      return out
    }
    let a = flat(mine)
    let b = flat(theirs)
    for key in Set(a.keys).union(b.keys).sorted() where a[key] != b[key] {
      return "\(key) is \(a[key] ?? "unset") here, \(b[key] ?? "unset") in the worker's config"
    }
    return nil
  }
}
