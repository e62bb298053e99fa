import CChecksum
import Foundation
import IGPTData

/// One framed protocol message: a fixed 40-byte header, a JSON meta part and a binary body,
/// sent as a single ZeroMQ frame. Everything is checked before use (`decode`).
///
/// Header (little-endian):
/// ```
///  0  magic "IGPT"          4  protocol version u16   6  type u16
///  8  run hash u64         16  parameter version u64 (step; ~0 = none)
/// 24  meta length u32      28  body length u64       36  crc32c of meta + body u32
/// ```
public struct Message: Equatable, Sendable {
  /// 3: feature tasks name the deepest layer wanted (workers stop their passes there).
  /// 4: hello, welcome and ready carry numerics fingerprints; refuse can pin a worker.
  /// 5: gradient tasks are blocks of a step's microbatch tree (one gradient per block), results
  /// carry each microbatch's loss, ready names the parameter version it holds.
  /// 6: parameter-server shards (shardHello ... pull); welcome lists them; results of gradients
  /// pushed to shards have empty bodies.
  public static let protocolVersion: UInt16 = 6
  public static let headerSize = 40
  static let magic: [UInt8] = Array("IGPT".utf8)
  /// Parameter version of messages not tied to one.
  public static let noVersion = UInt64.max
  /// Versions from here up name the parameter snapshot of a probe job (base + job id).
  public static let probeSnapshotBase: UInt64 = 1 << 62

  public enum Kind: UInt16, Sendable, CaseIterable {
    case hello = 1, welcome, refuse, heartbeat, ready, params, task, result, done, reset
    case statusRequest, statusReply, fetch, probeSubmit, probeListRequest, probeList
    // parameter-server shards (Wire+Shards.swift)
    case shardHello, shardWelcome, shardState, push, pushed, partials, update, updated, pull
  }

  public var kind: Kind
  public var runHash: UInt64
  public var version: UInt64
  public var meta: Data
  public var body: Data

  public init(_ kind: Kind, runHash: UInt64 = 0, version: UInt64 = Message.noVersion, meta: Data = Data(), body: Data = Data()) {
    self.kind = kind
    self.runHash = runHash
    self.version = version
    self.meta = meta
    self.body = body
  }

  /// A message whose meta is a Codable value.
  public init<M: Encodable>(_ kind: Kind, runHash: UInt64 = 0, version: UInt64 = Message.noVersion, meta value: M, body: Data = Data()) {
    let e = JSONEncoder()
    e.outputFormatting = .sortedKeys
    self.init(kind, runHash: runHash, version: version, meta: (try? e.encode(value)) ?? Data("{}".utf8), body: body)
  }

  /// The meta part decoded as M, or a ProtocolError naming the message type.
  public func decodeMeta<M: Decodable>(_ type: M.Type) throws -> M {
    do { return try JSONDecoder().decode(M.self, from: meta) } catch {
      throw ProtocolError("\(kind) message with malformed meta (\(error))")
    }
  }

  /// The wire bytes.
  public func encode() -> Data {
    var d = Data(capacity: Self.headerSize + meta.count + body.count)
    d.append(contentsOf: Self.magic)
    d.appendLE(Self.protocolVersion)
    d.appendLE(kind.rawValue)
    d.appendLE(runHash)
    d.appendLE(version)
    d.appendLE(UInt32(meta.count))
    d.appendLE(UInt64(body.count))
    d.appendLE(Self.checksum(meta: meta, body: body))
    d.append(meta)
    d.append(body)
    return d
  }

  /// CRC-32C of meta then body (hardware CRC: megabytes per message, several messages a step).
  static func checksum(meta: Data, body: Data) -> UInt32 {
    var combined = meta.withUnsafeBytes { igpt_crc32c(0, $0.baseAddress, $0.count) }
    body.withUnsafeBytes { combined = igpt_crc32c(combined, $0.baseAddress, $0.count) }
    return combined
  }

  /// Parses and verifies wire bytes: magic, protocol version, type, lengths, checksum.
  /// A message of another protocol version throws `.otherVersion` so it can be refused politely.
  public static func decode(_ d: Data) throws -> Message {
    guard d.count >= headerSize else { throw ProtocolError("\(d.count)-byte message is shorter than the \(headerSize)-byte header") }
    return try d.withUnsafeBytes { raw -> Message in
      func u16(_ o: Int) -> UInt16 { raw.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian }
      func u32(_ o: Int) -> UInt32 { raw.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian }
      func u64(_ o: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
      guard Array(raw[0..<4]) == magic else { throw ProtocolError("not an igpt message (bad magic)") }
      let version = u16(4)
      guard version == protocolVersion else {
        throw ProtocolError("protocol version \(version), this side speaks \(protocolVersion)", otherVersion: version)
      }
      guard let kind = Kind(rawValue: u16(6)) else { throw ProtocolError("unknown message type \(u16(6))") }
      let metaLength = Int(u32(24))
      let bodyLength = u64(28)
      guard bodyLength <= UInt64(d.count), headerSize + metaLength + Int(bodyLength) == d.count else {
        throw ProtocolError("\(kind) message lengths (meta \(metaLength), body \(bodyLength)) disagree with its size \(d.count)")
      }
      // Slices share the received bytes (a gradient is not copied again).
      let meta = d[d.startIndex + headerSize..<d.startIndex + headerSize + metaLength]
      let body = d[d.startIndex + headerSize + metaLength..<d.endIndex]
      let crc = checksum(meta: meta, body: body)
      guard crc == u32(36) else {
        throw ProtocolError(String(format: "\(kind) message checksum mismatch (%08x, header says %08x)", crc, u32(36)))
      }
      return Message(kind, runHash: u64(8), version: u64(16), meta: meta, body: body)
    }
  }
}

/// A message that failed validation.
public struct ProtocolError: Error, CustomStringConvertible {
  public let description: String
  /// Set when the message was well-formed but of another protocol version.
  public let otherVersion: UInt16?
  public init(_ d: String, otherVersion: UInt16? = nil) {
    description = d
    self.otherVersion = otherVersion
  }
}

extension Data {
  mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
    Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
  }
}
