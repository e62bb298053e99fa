import Foundation
import IGPTData
import IGPTModel
import IGPTTestSupport
import Testing
@testable import IGPTTraining

/// A latent model's config.json names its VQ-VAE (`igpt_vqvae`); reading it back gives the
/// tokenizer it was written from, and a malformed entry is one error line naming the file.
struct HFConfigTokenizerTests {
  @Test func theVQVAEEntryReadsBackAndAMalformedOneIsOneLine() throws {
    let dir = Fixtures.directory("hfconfig-vqvae")
    let model = ModelConfig(layers: 2, embd: 16, heads: 2, seq: 4, vocab: 17, objective: .ar)
    let tokenizer = TokenStoreManifest.Tokenizer(
      kind: .vqvae, vqvae: .init(checkpoint: "/runs/vq/checkpoints/step-00000300", crc32: 0x00AB_12CD, codes: 16, grid: 2, imageResolution: 8))
    let files = try Checkpoint.huggingFaceFiles(model: model, palette: [], tokenizer: tokenizer)
    #expect(files.map(\.0) == ["config.json"])
    let path = dir + "/config.json"
    try files[0].1.write(to: URL(fileURLWithPath: path))
    #expect(try Checkpoint.vqvaeTokenizer(hfConfig: path) == tokenizer)

    var object = try #require(try JSONSerialization.jsonObject(with: files[0].1) as? [String: Any])
    var entry = try #require(object["igpt_vqvae"] as? [String: String])
    entry["crc32"] = "not-hex"
    object["igpt_vqvae"] = entry
    try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    #expect { try Checkpoint.vqvaeTokenizer(hfConfig: path) } throws: { e in
      "\(e)".contains("config.json") && "\(e)".contains("igpt_vqvae") && !"\(e)".contains("\n")
    }
    // a palette model's config.json names no VQ-VAE
    object["igpt_vqvae"] = nil
    try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    #expect(try Checkpoint.vqvaeTokenizer(hfConfig: path) == nil)
  }
}
