import Foundation

/// The `config.json` of a Hugging Face ImageGPT model directory (`ImageGPTConfig`), written
/// beside every checkpoint's model.safetensors and read from directories HF's `save_pretrained`
/// wrote.
///
/// HF's vocabulary has one more row than the palette: the start-of-sequence token is row V of
/// `transformer.wte.weight`. HF's ImageGPT is causal only; a BERT model's config says so in
/// `igpt_objective` (transformers ignores the key, and `igpt export` refuses such a model).
public struct HFConfig: Codable, Equatable, Sendable {
  public var modelType = "imagegpt"
  public var architectures = ["ImageGPTForCausalImageModeling"]
  public var vocabSize: Int
  public var nPositions: Int
  public var nEmbd: Int
  public var nLayer: Int
  public var nHead: Int
  public var nInner: Int?
  public var activationFunction = "quick_gelu"
  public var layerNormEpsilon: Double = 1e-5
  public var tieWordEmbeddings = false
  public var residPdrop: Double = 0
  public var embdPdrop: Double = 0
  public var attnPdrop: Double = 0
  public var scaleAttnWeights = true
  public var scaleAttnByInverseLayerIdx = false
  public var reorderAndUpcastAttn = false
  public var torchDtype = "float32"
  /// igpt's own: "ar" or "bert" (absent in HF's files: ar).
  public var igptObjective: String?
  /// igpt's own, for models of VQ-VAE codes: the VQ-VAE that decodes their tokens (checkpoint,
  /// crc32, codes, grid, image_resolution). Such models have no preprocessor_config.json.
  public var igptVQVAE: [String: String]?

  enum CodingKeys: String, CodingKey {
    case modelType = "model_type", architectures, vocabSize = "vocab_size", nPositions = "n_positions", nEmbd = "n_embd"
    case nLayer = "n_layer", nHead = "n_head", nInner = "n_inner", activationFunction = "activation_function"
    case layerNormEpsilon = "layer_norm_epsilon", tieWordEmbeddings = "tie_word_embeddings", residPdrop = "resid_pdrop"
    case embdPdrop = "embd_pdrop", attnPdrop = "attn_pdrop", scaleAttnWeights = "scale_attn_weights"
    case scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx", reorderAndUpcastAttn = "reorder_and_upcast_attn"
    case torchDtype = "torch_dtype", igptObjective = "igpt_objective", igptVQVAE = "igpt_vqvae"
  }

  public init(_ m: ModelConfig) {
    vocabSize = m.vocab + 1
    nPositions = m.seq
    nEmbd = m.embd
    nLayer = m.layers
    nHead = m.heads
    nInner = 4 * m.embd
    igptObjective = m.objective.rawValue
  }

  /// Reads HF's file, where every key but the shape has a default (as in `ImageGPTConfig`).
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "imagegpt"
    architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
    vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 513
    nPositions = try c.decodeIfPresent(Int.self, forKey: .nPositions) ?? 1024
    nEmbd = try c.decodeIfPresent(Int.self, forKey: .nEmbd) ?? 512
    nLayer = try c.decodeIfPresent(Int.self, forKey: .nLayer) ?? 24
    nHead = try c.decodeIfPresent(Int.self, forKey: .nHead) ?? 8
    nInner = try c.decodeIfPresent(Int.self, forKey: .nInner)
    activationFunction = try c.decodeIfPresent(String.self, forKey: .activationFunction) ?? "quick_gelu"
    layerNormEpsilon = try c.decodeIfPresent(Double.self, forKey: .layerNormEpsilon) ?? 1e-5
    tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
    residPdrop = try c.decodeIfPresent(Double.self, forKey: .residPdrop) ?? 0.1
    embdPdrop = try c.decodeIfPresent(Double.self, forKey: .embdPdrop) ?? 0.1
    attnPdrop = try c.decodeIfPresent(Double.self, forKey: .attnPdrop) ?? 0.1
    scaleAttnWeights = try c.decodeIfPresent(Bool.self, forKey: .scaleAttnWeights) ?? true
    scaleAttnByInverseLayerIdx = try c.decodeIfPresent(Bool.self, forKey: .scaleAttnByInverseLayerIdx) ?? false
    reorderAndUpcastAttn = try c.decodeIfPresent(Bool.self, forKey: .reorderAndUpcastAttn) ?? false
    torchDtype = try c.decodeIfPresent(String.self, forKey: .torchDtype) ?? "float32"
    igptObjective = try c.decodeIfPresent(String.self, forKey: .igptObjective)
    igptVQVAE = try c.decodeIfPresent([String: String].self, forKey: .igptVQVAE)
  }

  /// The model shape, or a one-line reason naming the field igpt cannot represent.
  /// Dropout only acts in training, so its settings are ignored (`notes` says so).
  public func modelConfig(name: String) throws -> (config: ModelConfig, notes: [String]) {
    func fail(_ why: String) -> Error { ModelConfigError("\(name): \(why)") }
    if modelType != "imagegpt" { throw fail("model_type is \(modelType), not imagegpt") }
    if activationFunction != "quick_gelu" { throw fail("activation_function is \(activationFunction): igpt computes quick_gelu only") }
    if tieWordEmbeddings { throw fail("tie_word_embeddings is true: igpt's head is its own matrix") }
    if let inner = nInner, inner != 4 * nEmbd { throw fail("n_inner is \(inner): igpt's MLP is 4 x n_embd (\(4 * nEmbd)) wide") }
    if layerNormEpsilon != Double(1e-5 as Float) && layerNormEpsilon != 1e-5 {
      throw fail("layer_norm_epsilon is \(layerNormEpsilon): igpt's norm uses 1e-5")
    }
    if !scaleAttnWeights || scaleAttnByInverseLayerIdx || reorderAndUpcastAttn {
      throw fail("attention scaling other than 1/sqrt(head size) (scale_attn_weights, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn)")
    }
    guard let objective = ModelConfig.Objective(rawValue: igptObjective ?? "ar") else {
      throw fail("igpt_objective is \(igptObjective ?? ""), expected ar or bert")
    }
    for (key, v, cap) in [("n_layer", nLayer, 1 << 12), ("n_embd", nEmbd, 1 << 20), ("n_positions", nPositions, 1 << 20),
                          ("vocab_size", vocabSize, (1 << 16) + 1)]
    where v < 1 || v > cap {
      throw fail("\(key) = \(v) is outside 1...\(cap)")
    }
    let m = ModelConfig(layers: nLayer, embd: nEmbd, heads: nHead, seq: nPositions, vocab: vocabSize - 1, objective: objective)
    do { try m.validate() } catch { throw fail("\(error)") }
    var notes: [String] = []
    if residPdrop != 0 || embdPdrop != 0 || attnPdrop != 0 { notes.append("dropout settings (resid, embd, attn) are ignored: igpt trains without dropout") }
    return (m, notes)
  }

  /// The JSON text, keys sorted.
  public func encoded() throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try e.encode(self)
  }
}
