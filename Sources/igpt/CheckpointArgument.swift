import Foundation
import IGPTData
import IGPTModel
import IGPTTraining

/// Resolves what a user passes as --checkpoint: a step directory, a run directory (its newest
/// intact checkpoint), a Hugging Face ImageGPT directory (config.json + model.safetensors or
/// shards) or a model.safetensors file.
enum CheckpointArgument {
  struct Resolved {
    var model: IGPT
    /// state.json when the checkpoint has one.
    var state: Checkpoint.State?
    var description: String
    /// The palette from a Hugging Face directory's preprocessor_config.json, when it has one.
    var palette: Palette? = nil
    /// The VQ-VAE a Hugging Face directory's config.json names (`igpt_vqvae`), when it names one.
    var vqvae: TokenStoreManifest.Tokenizer? = nil
  }

  static func load(_ path: String) throws -> Resolved {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw CleanError("\(path): no such checkpoint (give a step directory, a run directory, a Hugging Face model directory or a model.safetensors)")
    }
    if !isDir.boolValue {
      let dir = (path as NSString).deletingLastPathComponent
      if (path as NSString).lastPathComponent == "model.safetensors" && HFDirectory.isModelDirectory(dir.isEmpty ? "." : dir)
        && !FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("state.json")) {
        return try load(dir.isEmpty ? "." : dir)  // its shape is in the config.json beside it
      }
      return Resolved(model: try IGPT.load(huggingFacePath: path), state: nil, description: path)
    }
    if FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("state.json")) {
      let l = try Checkpoint.read(path)
      return Resolved(model: l.model, state: l.state, description: path)
    }
    if HFDirectory.isModelDirectory(path) {
      let (model, notes) = try HFDirectory.load(path)
      for n in notes { logLine("note: \(path): \(n)") }
      let processor = (path as NSString).appendingPathComponent("preprocessor_config.json")
      let palette = FileManager.default.fileExists(atPath: processor) ? try Palette.load(from: processor) : nil
      if let palette, palette.count != model.config.vocab {
        throw CleanError("\(processor): \(palette.count) clusters for a model of \(model.config.vocab) colours")
      }
      let vqvae = try Checkpoint.vqvaeTokenizer(hfConfig: (path as NSString).appendingPathComponent("config.json"))
      return Resolved(model: model, state: nil, description: path, palette: palette, vqvae: vqvae)
    }
    if let l = Checkpoint.newestGood(runDir: path, warn: { logLine("warning: \($0)") }) {
      return Resolved(model: l.model, state: l.state, description: l.path)
    }
    let file = (path as NSString).appendingPathComponent("model.safetensors")
    if FileManager.default.fileExists(atPath: file) {
      return Resolved(model: try IGPT.load(huggingFacePath: file), state: nil, description: file)
    }
    throw CleanError("\(path): holds no checkpoint (no state.json, checkpoints/ or model.safetensors)")
  }

  /// The token store: --data if given, else the one the checkpoint was trained on.
  static func store(_ data: String?, _ resolved: Resolved) throws -> TokenStore {
    guard let path = data ?? resolved.state?.store else {
      throw CleanError("give --data: \(resolved.description) does not say which token store it was trained on")
    }
    let store = try TokenStore(path: path)
    let m = resolved.model.config
    guard store.manifest.sequenceLength <= m.seq, store.vocab == m.vocab else {
      throw CleanError("\(path): \(store.manifest.sequenceLength) tokens of \(store.vocab) kinds do not fit the model (\(m.seq) positions, \(m.vocab) tokens)")
    }
    return store
  }
}
