import Foundation
import IGPTModel
import IGPTTraining

/// The JSON meta part of each protocol message, one struct per message type.
public enum Wire {
  /// Worker or client -> coordinator: who is asking to join.
  public struct Hello: Codable, Sendable {
    public var name: String
    public var host: String
    public var pid: Int32
    /// The worker's own run config when started with --config: the coordinator refuses a worker
    /// whose model, train or cluster settings differ from its own.
    public var config: RunConfig?
    /// What decides the bytes it computes that it cannot change by itself (nil: an older igpt).
    public var numerics: NumericsFingerprint.Host? = nil
  }

  /// Coordinator -> worker: what to build.
  public struct Welcome: Codable, Sendable {
    public var runHash: UInt64
    public var model: ModelConfig
    /// The threads the run computes with: workers use it so their gradients are the bytes
    /// `igpt train` would compute.
    public var threads: Int
    public var codec: RunConfig.GradientCodecKind
    public var heartbeatInterval: Double
    public var heartbeatMisses: Int
    public var step: Int
    public var steps: Int
    /// train.recompute of the run: workers recompute activations in backward (less memory).
    public var recompute: Bool
    /// The run's numerics: the worker sends its own fingerprint at these widths and threads in
    /// each ready, and gets no work unless they are equal (or the policy is any).
    public var numerics: NumericsFingerprint
    public var policy: RunConfig.NumericsPolicy
    /// The parameter-server shards, in slab order (empty: the coordinator is the only one).
    public var shards: [ShardEndpoint] = []
  }

  /// Coordinator -> peer: not accepted. Fatal refusals end the worker; others make it say hello again.
  public struct Refuse: Codable, Sendable {
    public var reason: String
    public var fatal: Bool
    /// Not refused for good: re-execute pinned to this OpenBLAS core type, then say hello again.
    public var pin: String? = nil
  }

  /// Worker -> coordinator: how much more work it can take, and what it still holds.
  public struct Ready: Codable, Sendable {
    /// Tasks the worker can take now (each result it returns adds one).
    public var credit: Int
    /// Parameter version the worker holds (nil = none).
    public var parameterVersion: UInt64?
    /// Ids of the tasks it holds (computing or waiting); any others it was sent are lost.
    public var holding: [UInt64]
    /// Its numerics fingerprint at the run's widths and threads (checked before it gets work).
    public var numerics: NumericsFingerprint? = nil
  }

  /// Coordinator -> worker: compute a task at the message's parameter version: one
  /// microbatch, or (gradient tasks) a block of `microbatches` consecutive ones from `micro`,
  /// a node of the step's `GradientTree`, summed there in that tree and sent as one gradient.
  public struct Task: Codable, Sendable {
    public enum Kind: String, Codable, Sendable { case gradient, validation, features }
    public var id: UInt64
    public var kind: Kind
    public var step: Int
    /// The (first) microbatch.
    public var micro: Int
    /// Images per microbatch.
    public var count: Int
    public var length: Int
    public var scale: Float
    public var hasMask: Bool
    /// Microbatches in the task (a gradient block; 1 otherwise).
    public var microbatches: Int = 1
    /// Feature tasks: the deepest layer wanted (the worker's forward passes stop there); nil = all.
    public var deepest: Int? = nil
  }

  /// Worker -> coordinator: a finished task. The body holds the encoded gradient (gradient tasks).
  public struct Result: Codable, Sendable {
    public var id: UInt64
    public var kind: Task.Kind
    public var step: Int
    public var micro: Int
    /// Each microbatch's loss (mean per token as the model defines it), in order; empty for features.
    public var losses: [Double]
    public var seconds: Double
  }

  /// Operator -> coordinator: queue a probe job (reply: probeList with the job first).
  public struct ProbeSubmit: Codable, Sendable {
    public var layers: String?
    public var trainImages: Int?
    public var evalImages: Int?
    public var labelsPerClass: Int?
    public var concat: Int?
    public var rawPixels: Bool?
    public var masks: Int?
    public var seed: UInt64?
    public init(layers: String?, trainImages: Int?, evalImages: Int?, labelsPerClass: Int? = nil, concat: Int? = nil,
                rawPixels: Bool? = nil, masks: Int? = nil, seed: UInt64? = nil) {
      self.seed = seed
      self.layers = layers
      self.trainImages = trainImages
      self.evalImages = evalImages
      self.labelsPerClass = labelsPerClass
      self.concat = concat
      self.rawPixels = rawPixels
      self.masks = masks
    }
  }

  /// Coordinator -> operator: probe jobs, newest first.
  public struct ProbeList: Codable, Sendable {
    public var jobs: [ProbeJob]
  }

  /// Coordinator -> worker: the run is over.
  public struct Done: Codable, Sendable {
    public var step: Int
  }
}

extension Wire.Task {
  /// Body of a task message: the microbatches' tokens as little-endian Int32, then their mask
  /// bytes (BERT).
  static func body(_ microbatches: [Microbatch]) -> Data {
    body(tokens: microbatches.flatMap(\.tokens), mask: microbatches.flatMap(\.mask))
  }

  static func body(tokens: [Int32], mask: [UInt8]) -> Data {
    var d = Data(capacity: tokens.count * 4 + mask.count)
    tokens.withUnsafeBufferPointer { t in
      for v in t { d.appendLE(v) }
    }
    d.append(contentsOf: mask)
    return d
  }

  /// The task's microbatches from its body, checked against the meta and the vocabulary.
  public func decodeMicrobatches(_ body: Data, vocab: Int) throws -> [Microbatch] {
    let (tokens, mask) = try decodeBody(body, vocab: vocab)
    let n = count * length
    return (0..<microbatches).map { i in
      Microbatch(count: count, length: length, tokens: Array(tokens[i * n..<(i + 1) * n]), mask: mask.isEmpty ? [] : Array(mask[i * n..<(i + 1) * n]))
    }
  }

  /// Tokens and mask from a task body, checked against the meta and the vocabulary.
  func decodeBody(_ body: Data, vocab: Int) throws -> (tokens: [Int32], mask: [UInt8]) {
    // sizes from the wire: checked before any arithmetic that could overflow
    let (perMicrobatch, o1) = count.multipliedReportingOverflow(by: length)
    let (n, o2) = perMicrobatch.multipliedReportingOverflow(by: microbatches)
    guard count >= 1, length >= 1, microbatches >= 1, !o1, !o2, n <= body.count / 4, body.count == n * 4 + (hasMask ? n : 0) else {
      throw ProtocolError("task body of \(body.count) bytes does not hold \(microbatches) x \(count) x \(length) tokens")
    }
    var tokens = [Int32](repeating: 0, count: n)
    body.withUnsafeBytes { raw in
      for i in 0..<n { tokens[i] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
    }
    guard tokens.allSatisfy({ $0 >= 0 && Int($0) < vocab }) else { throw ProtocolError("task holds a token outside 0..<\(vocab)") }
    let mask = hasMask ? [UInt8](body[body.startIndex + 4 * n..<body.endIndex]) : []
    return (tokens, mask)
  }
}
