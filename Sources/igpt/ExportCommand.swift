import ArgumentParser
import Foundation
import IGPTData
import IGPTModel
import IGPTTraining

/// `igpt export`: a checkpoint as a clean Hugging Face ImageGPT directory.
struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export", abstract: "Write a checkpoint as a Hugging Face ImageGPT model directory (no optimizer state).",
    discussion: """
      DIR gets model.safetensors, config.json (ImageGPTConfig) and, when the checkpoint records its palette, preprocessor_config.json (the palette as clusters, for ImageGPTImageProcessor). ImageGPTForCausalImageModeling.from_pretrained(DIR) loads it as it is. Every checkpoint step directory already is such a directory; export leaves out the optimizer and igpt's state. HF's ImageGPT is causal only: BERT checkpoints are refused. DIR is written under a temporary name and renamed when complete.

      Example: igpt export --checkpoint runs/tiny --out hf/tiny
      """)

  @Option(help: "Checkpoint: a step directory, a run directory (its newest), a HF directory or a model.safetensors.")
  var checkpoint: String
  @Option(help: "Directory to create.") var out: String
  @Option(help: "Token store whose palette goes into preprocessor_config.json (default: the checkpoint's).") var data: String?

  func run() throws {
    let resolved = try CheckpointArgument.load(checkpoint)
    let model = resolved.model
    guard model.config.objective == .ar else {
      throw CleanError("\(resolved.description) is a BERT model: Hugging Face's ImageGPT is causal only, so it cannot be exported")
    }
    var palette: [[Float]]? = resolved.state?.palette ?? resolved.palette.map { p in
      (0..<p.count).map { Array(p.colors[($0 * p.channels)..<(($0 + 1) * p.channels)]) }
    }
    var tokenizer = resolved.state?.tokenizer
    if data != nil {
      let m = try CheckpointArgument.store(data, resolved).manifest
      palette = m.palette
      tokenizer = m.tokenizer
    }
    let dir = try AtomicDirectory(destination: out)
    try dir.writeFile("model.safetensors") { w in
      try model.withHuggingFaceEntries { entries, metadata in
        try w.write(try Safetensors.header(entries, metadata: metadata))
        for e in entries { try w.write(UnsafeRawBufferPointer(e.data)) }
      }
    }
    var files = [("config.json", try HFConfig(model.config).encoded())]
    if tokenizer?.kind == .vqvae || palette?.isEmpty == false {
      files = try Checkpoint.huggingFaceFiles(model: model.config, palette: palette ?? [], tokenizer: tokenizer)
    } else {
      logLine("note: \(resolved.description) does not record its palette: no preprocessor_config.json (give --data STORE)")
    }
    for (name, bytes) in files { try dir.write(bytes, to: name) }
    try dir.commit()
    print("exported \(resolved.description) to \(out): \(files.map(\.0).joined(separator: ", ")), model.safetensors (\(model.parameterCount) parameters)")
  }
}
