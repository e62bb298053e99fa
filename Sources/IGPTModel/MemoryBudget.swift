import Foundation
import IGPTKernels

/// What a command will need in memory, computed before anything is allocated, against what
/// the host has: one place per resource, every size in Double so no shape can overflow it.
///
/// The host's memory is its physical memory, or `IGPT_MAX_MEMORY` / `--max-memory` (bytes,
/// or with a K, M, G or T suffix) when given.
public enum MemoryBudget {
  /// Set from `--max-memory`.
  nonisolated(unsafe) public static var limit: Double?

  public static var available: Double {
    if let limit { return limit }
    if let env = ProcessInfo.processInfo.environment["IGPT_MAX_MEMORY"], let v = parse(env) { return v }
    return Double(ProcessInfo.processInfo.physicalMemory)
  }

  /// Bytes from "24G", "512M", "1.5T" or a plain number of bytes; nil when not one.
  public static func parse(_ s: String) -> Double? {
    let units: [Character: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
    var text = s.trimmingCharacters(in: .whitespaces).uppercased()
    if text.hasSuffix("B") { text.removeLast() }
    var scale = 1.0
    if let u = text.last, let f = units[u] {
      scale = f
      text.removeLast()
    }
    guard let v = Double(text), v.isFinite, v > 0 else { return nil }
    return v * scale
  }

  /// Throws one line when `bytes` exceed what the host has.
  public static func check(_ bytes: Double, for what: String) throws {
    guard bytes <= available else {
      throw MemoryBudgetError("\(what) needs \(format(bytes)) of memory; this host has \(format(available)) (--max-memory or IGPT_MAX_MEMORY to allow more)")
    }
  }

  public static func format(_ bytes: Double) -> String {
    bytes >= 1e12 ? String(format: "%.0f TB", bytes / 1e12) : bytes >= 1e9 ? String(format: "%.1f GB", bytes / 1e9)
      : String(format: "%.0f MB", bytes / 1e6)
  }

  /// Floats of the model's parameter slab (ParameterLayout's count, as a Double).
  public static func parameterFloats(_ c: ModelConfig) -> Double {
    let C = Double(c.embd), V = Double(c.vocab)
    return (V + 1) * C + Double(c.seq) * C + Double(c.layers) * (12 * C * C + 2 * C) + C + V * C
  }

  /// Bytes of a model: parameters and gradients.
  public static func model(_ c: ModelConfig) -> Double { 8 * parameterFloats(c) }

  /// Bytes of the activations of forward and backward over `batch` sequences of `seq` tokens.
  public static func activations(_ c: ModelConfig, batch: Int, seq: Int, threads: Int, recompute: Bool) -> Double {
    let T = Double(seq), th = Double(max(1, threads))
    let scratch = Double(Attention.scratchCount(T: seq, D: c.embd / max(1, c.heads), threads: max(1, threads)))
    let sizes = Activations.sizes(L: Double(c.layers), C: Double(c.embd), H: Double(c.heads), V: Double(c.vocab), B: Double(batch), T: T,
                                  slots: recompute ? 1 : Double(c.layers), threads: th, attentionScratch: scratch)
    return 4 * sizes.reduce(0) { $0 + $1 + 16 }
  }

  /// Bytes of a sampler's key/value cache and buffers for `batch` images.
  public static func sampler(_ c: ModelConfig, batch: Int) -> Double {
    4 * Double(Sampler.floats(c, batch: batch))
  }
}

/// Not enough memory for what was asked, in one line.
public struct MemoryBudgetError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}
