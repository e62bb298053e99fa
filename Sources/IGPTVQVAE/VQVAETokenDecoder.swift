import Foundation
import IGPTData

/// The decoder of a token store, whichever its tokenizer: the palette, or the VQ-VAE that
/// encoded a latent store (loaded from the checkpoint the manifest names, refused when its
/// weights are not the ones the store was encoded with).
public enum VQVAETokenDecoder {
  public static func forStore(_ store: TokenStore) throws -> TokenDecoder {
    try forTokenizer(store.manifest.tokenKind, palette: store.palette, resolution: store.manifest.resolution)
  }

  public static func forTokenizer(_ t: TokenStoreManifest.Tokenizer, palette: Palette?, resolution: Int) throws -> TokenDecoder {
    if let palette { return .palette(palette, resolution: resolution) }
    guard let ref = t.vqvae else { throw DataError("the store names neither a palette nor a VQ-VAE") }
    let model = try load(ref)
    let lock = NSLock()
    return TokenDecoder(resolution: ref.imageResolution, channels: model.config.channels,
                        description: "the VQ-VAE decoder of \(ref.checkpoint) (\(ref.codes) codes)") { tokens in
      lock.withLock {
        let out = tokens.withUnsafeBufferPointer { model.decode($0.baseAddress!, batch: 1) }
        // model pixels in [-0.5, 0.5], clamped as a PNG would be, to [-1, 1]
        return (0..<model.imageFloats).map { 2 * min(max(out[$0], -0.5), 0.5) }
      }
    }
  }

  /// The VQ-VAE a latent store names, checked against the checksum the store recorded.
  public static func load(_ ref: TokenStoreManifest.VQVAEReference) throws -> VQVAE {
    let loaded: VQVAECheckpoint.Loaded
    do { loaded = try VQVAECheckpoint.read(ref.checkpoint) } catch {
      throw DataError.file(ref.checkpoint, "the VQ-VAE this latent store was encoded with cannot be read (\(error))")
    }
    guard loaded.state.checksums[VQVAECheckpoint.modelFile] == ref.crc32 else {
      throw DataError.file(ref.checkpoint, String(format: "is not the VQ-VAE this store was encoded with (crc32 %08x, the store names %08x)",
                                                  loaded.state.checksums[VQVAECheckpoint.modelFile] ?? 0, ref.crc32))
    }
    guard loaded.model.config.codes == ref.codes, loaded.model.config.grid == ref.grid, loaded.model.config.resolution == ref.imageResolution else {
      throw DataError.file(ref.checkpoint, "its shape does not match the store's codes, grid or image resolution")
    }
    return loaded.model
  }
}
