import IGPTData
import IGPTModel
import IGPTTraining
import Testing

@testable import IGPTCluster

/// The run hash covers the VQ-VAE a latent store was encoded with; palette runs hash as before.
@Suite struct RunIdentityTests {
  @Test func theHashCoversAVQVAETokenizer() {
    let c = RunConfig(), m = ModelConfig(layers: 1, embd: 16, heads: 2, seq: 4, vocab: 16)
    let palette = RunIdentity.runHash(config: c, model: m, palette: [[0]])
    #expect(RunIdentity.runHash(config: c, model: m, palette: [[0]], tokenizer: .palette) == palette)
    func vq(_ crc: UInt32) -> TokenStoreManifest.Tokenizer {
      .init(kind: .vqvae, vqvae: .init(checkpoint: "/v", crc32: crc, codes: 16, grid: 2, imageResolution: 8))
    }
    let a = RunIdentity.runHash(config: c, model: m, palette: [], tokenizer: vq(1))
    #expect(a != RunIdentity.runHash(config: c, model: m, palette: []))
    #expect(a != RunIdentity.runHash(config: c, model: m, palette: [], tokenizer: vq(2)))
  }
}
