import Foundation
import IGPTTraining

/// The meta parts of the messages between the coordinator, parameter-server shards and workers.
///
/// A shard says `shardHello` to the coordinator, which answers `shardWelcome` (its index and
/// slice) and `shardState` (the slice's parameters and moments). Each step, workers `push` each
/// block's gradient slice to its shard (answered by `pushed`) and `fetch` parameter slices from
/// it; a shard whose step sum is complete sends its norm `partials`; the coordinator, once it
/// has every shard's, sends `update` (the learning rate and the clip the global norm gives),
/// and each shard answers `updated`. `pull` asks a shard for its state (a checkpoint).
extension Wire {
  /// Shard -> coordinator: a shard asking to serve, and where workers reach it.
  public struct ShardHello: Codable, Sendable {
    public var name: String
    public var host: String
    public var pid: Int32
    /// The endpoint workers connect to (the address it bound, as others reach it).
    public var endpoint: String
    /// Its CURVE public key (Z85) when it serves workers with keys.
    public var publicKey: String? = nil
  }

  /// Coordinator -> shard: which slice it serves and how it updates it.
  public struct ShardWelcome: Codable, Sendable {
    public var runHash: UInt64
    public var index: Int
    public var shards: Int
    /// Values in the whole parameter slab.
    public var total: Int
    /// Microbatches per step (the step's gradient tree).
    public var microbatches: Int
    public var codec: RunConfig.GradientCodecKind
    public var train: RunConfig.Train
    public var heartbeatInterval: Double
    public var heartbeatMisses: Int
  }

  /// Coordinator <-> shard: one part of a slice's state at the message's version, a lossless
  /// payload of the slice's values: part 0 the parameters, 1 and 2 the AdamW moments (three
  /// messages, so none is larger than a gradient and each is decoded in place).
  public struct ShardState: Codable, Sendable {
    public var steps: Int
    public var part: Int
  }

  /// Coordinator -> worker (in the welcome): a shard's endpoint and the slab values it holds.
  public struct ShardEndpoint: Codable, Sendable, Equatable {
    public var endpoint: String
    public var lower: Int
    public var upper: Int
    /// The shard's CURVE public key (workers use it as that connection's server key).
    public var publicKey: String? = nil
  }

  /// Worker -> shard: one block's gradient over the shard's slice, at the message's version (= step).
  public struct Push: Codable, Sendable {
    public var task: UInt64
    public var micro: Int
    public var microbatches: Int
  }

  /// Shard -> worker: a push taken (or a duplicate), or refused (stale step, malformed).
  public struct Pushed: Codable, Sendable {
    public var task: UInt64
    public var accepted: Bool
    public var reason: String? = nil
  }

  /// Shard -> coordinator: the step's norm partials are in the body (little-endian Float64, one
  /// per norm chunk the shard owns, in order); the message's version is the step.
  public struct Partials: Codable, Sendable {
    public var index: Int
  }

  /// Coordinator -> shard: apply the update of the message's version (step). Exact values as bit patterns.
  public struct Update: Codable, Sendable {
    public var learningRateBits: UInt64
    public var gradScaleBits: UInt32
    public init(learningRate: Double, gradScale: Float) {
      learningRateBits = learningRate.bitPattern
      gradScaleBits = gradScale.bitPattern
    }
    public var learningRate: Double { Double(bitPattern: learningRateBits) }
    public var gradScale: Float { Float(bitPattern: gradScaleBits) }
  }

  /// Shard -> coordinator: the slice is at the message's version (after an update or a restore).
  public struct Updated: Codable, Sendable {
    public var index: Int
  }
}

extension Data {
  /// Doubles as little-endian bytes.
  public static func doubles(_ values: [Double]) -> Data {
    var d = Data(capacity: 8 * values.count)
    for v in values { d.appendLE(v.bitPattern) }
    return d
  }

  /// Little-endian doubles, or nil when the byte count is not `count` of them.
  public func doubles(count: Int) -> [Double]? {
    guard self.count == 8 * count else { return nil }
    return withUnsafeBytes { raw in (0..<count).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) } }
  }
}
