import Foundation

/// A Hugging Face ImageGPT model directory, as `save_pretrained` writes it: config.json with
/// model.safetensors, or with shards `model-0000i-of-0000n.safetensors` listed in
/// `model.safetensors.index.json`.
public enum HFDirectory {
  /// Whether `path` is such a directory (it has a config.json).
  public static func isModelDirectory(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("config.json"))
  }

  /// The model in directory `path` (files mapped, not read into buffers); `notes` says what
  /// was ignored (dropout settings).
  public static func load(_ path: String) throws -> (model: IGPT, notes: [String]) {
    let configPath = (path as NSString).appendingPathComponent("config.json")
    guard let configData = FileManager.default.contents(atPath: configPath) else {
      throw SafetensorsError("\(configPath): cannot be read")
    }
    let hf: HFConfig
    do { hf = try JSONDecoder().decode(HFConfig.self, from: configData) } catch {
      throw SafetensorsError("\(configPath): not an ImageGPT config (\(error))")
    }
    let (config, notes) = try hf.modelConfig(name: configPath)
    let single = (path as NSString).appendingPathComponent("model.safetensors")
    let indexPath = (path as NSString).appendingPathComponent("model.safetensors.index.json")
    var files: [String]
    if FileManager.default.fileExists(atPath: single) {
      files = [single]
    } else if let d = FileManager.default.contents(atPath: indexPath) {
      files = try shardFiles(index: d, name: indexPath).map { (path as NSString).appendingPathComponent($0) }
    } else {
      throw SafetensorsError("\(path): has config.json but neither model.safetensors nor model.safetensors.index.json")
    }
    let mapped = try files.map { f -> (Data, String) in
      guard let d = try? Data(contentsOf: URL(fileURLWithPath: f), options: .alwaysMapped) else {
        throw SafetensorsError("\(f): cannot be read (missing or not a file)")
      }
      return (d, f)
    }
    let needed = ParameterLayout(config).count * 4
    guard needed <= mapped.reduce(0, { $0 + $1.0.count }) else {
      throw SafetensorsError("\(path): its safetensors files are too small for the \(needed) bytes of parameters config.json describes")
    }
    let model = try withBuffers(mapped.map(\.0)) { raws in
      let shards = try zip(raws, mapped).map { raw, m in (raw: raw, index: try Safetensors.index(raw, name: m.1), name: m.1) }
      return try IGPT.load(huggingFaceShards: shards, config: config, name: path)
    }
    return (model, notes)
  }

  /// The shard file names a `model.safetensors.index.json` maps tensors to (sorted, each once);
  /// names that would leave the directory are refused.
  public static func shardFiles(index d: Data, name: String) throws -> [String] {
    guard let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any], let map = o["weight_map"] as? [String: String] else {
      throw SafetensorsError("\(name): has no weight_map of tensor names to files")
    }
    let files = Array(Set(map.values)).sorted()
    if let bad = files.first(where: { $0.isEmpty || $0.contains("/") || $0.hasPrefix(".") }) {
      throw SafetensorsError("\(name): shard name '\(bad)' is not a file in the directory")
    }
    guard !files.isEmpty else { throw SafetensorsError("\(name): its weight_map names no files") }
    return files
  }

  /// Calls body with the raw bytes of every buffer at once.
  static func withBuffers<R>(_ data: [Data], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
    func go(_ i: Int, _ acc: [UnsafeRawBufferPointer]) throws -> R {
      if i == data.count { return try body(acc) }
      return try data[i].withUnsafeBytes { try go(i + 1, acc + [$0]) }
    }
    return try go(0, [])
  }
}
