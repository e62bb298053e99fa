import Foundation
import IGPTData
import IGPTTestSupport
import Testing

/// Checkpoints as Hugging Face ImageGPT directories: every step directory is one, `igpt export`
/// writes a clean one, and igpt reads them back (no Python needed here; `make interop` checks
/// them against transformers itself).
@Suite(.serialized) struct InteropTests {
  @Test func stepDirectoriesAndExportsAreHFDirectoriesIgptReadsBack() throws {
    let s = try ClusterTests.setUp("interop", steps: 20)
    let step = s.dir + "/reference/checkpoints/step-00000020"
    for f in ["config.json", "preprocessor_config.json", "model.safetensors"] {
      #expect(FileManager.default.fileExists(atPath: step + "/" + f), "\(f)")
    }
    let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: step + "/config.json"))) as? [String: Any])
    #expect(config["vocab_size"] as? Int == 5 && config["n_layer"] as? Int == 2 && config["n_positions"] as? Int == 64, "\(config)")
    // the palette HF's image processor gets is the store's
    #expect(try Palette.load(from: step) == (try TokenStore(path: s.store).palette))
    let out = s.dir + "/hf"
    let e = try IGPTBinary.run(["export", "--checkpoint", s.dir + "/reference", "--out", out])
    #expect(e.status == 0, "\(e.stderr)")
    let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    #expect(files == ["config.json", "model.safetensors", "preprocessor_config.json"], "\(files)")
    func loss(_ checkpoint: String) throws -> Double? {
      let r = try IGPTBinary.run(["eval", "--checkpoint", checkpoint, "--data", s.store, "--split", "test"])
      return (try? IGPTBinary.json(r.stdout))?["loss_nats"] as? Double
    }
    let reference = try loss(step)
    let exported = try loss(out)
    #expect(reference != nil && exported == reference)
    // the export loads as igpt's own step directory does, also when given its model.safetensors
    #expect(try loss(out + "/model.safetensors") == reference)
    let again = try IGPTBinary.run(["export", "--checkpoint", out, "--out", out])
    #expect(again.status != 0 && again.stderr.contains("already exists"), "\(again.stderr)")
    // HF's ImageGPT is causal only
    let bert = s.dir + "/bert.yaml"
    try String(contentsOfFile: s.config, encoding: .utf8).replacingOccurrences(of: "objective: ar", with: "objective: bert")
      .write(toFile: bert, atomically: true, encoding: .utf8)
    #expect(try IGPTBinary.run(["train", "--config", bert, "--run", s.dir + "/b", "--steps", "2"]).status == 0)
    let refused = try IGPTBinary.run(["export", "--checkpoint", s.dir + "/b", "--out", s.dir + "/hf-bert"])
    #expect(refused.status != 0 && refused.stderr.contains("causal only") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    #expect(!FileManager.default.fileExists(atPath: s.dir + "/hf-bert"))
  }
}
