import CLZ4
import Dispatch
import Foundation
import IGPTKernels
import IGPTTraining

/// Float slabs on the wire: byte-shuffled planes compressed with LZ4, chunk by chunk.
///
/// `lossless` keeps all four bytes of each float (gradients and parameters, the default);
/// `bf16` keeps the top two (round to nearest even) and leaves the rounding error in a residual
/// the caller adds into its next gradient (error feedback), about 2.6x smaller on real gradients.
///
/// Payload (little-endian): kind u8 (1 lossless, 2 bf16), element count u64, chunk elements u32,
/// chunk count u32, each chunk's compressed size u32, then the compressed chunks. Decoding
/// checks every size, so a hostile payload cannot overrun anything.
public enum GradientCodec {
  // 1 MB of floats per chunk: small enough that encoding a few-MB slab uses every core.
  static let chunkElements = 1 << 18

  /// Encodes count floats losslessly.
  public static func encode(_ values: UnsafePointer<Float>, count: Int) -> Data {
    encode(kind: .lossless, count: count) { _, range, out in
      BytePlanes.shuffle(UnsafeRawPointer(values + range.lowerBound), count: range.count, into: out)
    }
  }

  /// Encodes (values + residual) as bf16; residual becomes the new rounding error.
  public static func encodeBF16(_ values: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>, count: Int) -> Data {
    encode(kind: .bf16, count: count) { _, range, out in
      BytePlanes.packBF16(values + range.lowerBound, residual: residual + range.lowerBound, count: range.count, into: out)
    }
  }

  /// Decodes a payload of exactly `count` floats into out; throws on anything malformed.
  public static func decode(_ payload: Data, into out: UnsafeMutablePointer<Float>, count: Int) throws {
    try payload.withUnsafeBytes { raw in
      let (kind, offsets) = try chunkTable(raw, count: count)
      try decompress(raw, kind: kind, offsets: offsets, count: count, into: out)
    }
  }

  /// The payload's codec and the byte offsets of its chunks (one more than chunks), checked.
  private static func chunkTable(_ raw: UnsafeRawBufferPointer, count: Int) throws -> (RunConfig.GradientCodecKind, [Int]) {
    guard raw.count >= 17 else { throw ProtocolError("float payload of \(raw.count) bytes is too short") }
    guard let kind = RunConfig.GradientCodecKind(code: raw[0]) else { throw ProtocolError("unknown codec \(raw[0])") }
    let n64 = raw.loadUnaligned(fromByteOffset: 1, as: UInt64.self).littleEndian
    guard n64 == UInt64(count) else { throw ProtocolError("float payload holds \(n64) values, expected \(count)") }
    let n = count
    let chunk = Int(raw.loadUnaligned(fromByteOffset: 9, as: UInt32.self).littleEndian)
    let chunks = Int(raw.loadUnaligned(fromByteOffset: 13, as: UInt32.self).littleEndian)
    guard chunk == chunkElements, chunks == (n + chunk - 1) / chunk else {
      throw ProtocolError("float payload chunking (\(chunks) x \(chunk)) is inconsistent")
    }
    let table = 17
    guard raw.count >= table + 4 * chunks else { throw ProtocolError("float payload chunk table is truncated") }
    var offsets = [Int](repeating: 0, count: chunks + 1)
    offsets[0] = table + 4 * chunks
    for c in 0..<chunks {
      offsets[c + 1] = offsets[c] + Int(raw.loadUnaligned(fromByteOffset: table + 4 * c, as: UInt32.self).littleEndian)
    }
    let width = kind == .lossless ? 4 : 2
    for c in 0..<chunks where offsets[c + 1] - offsets[c] > Int(LZ4_compressBound(Int32(chunk * width))) {
      throw ProtocolError("float payload chunk \(c) is larger than LZ4 can make it")
    }
    guard offsets[chunks] == raw.count else {
      throw ProtocolError("float payload chunk sizes add up to \(offsets[chunks]) bytes, payload has \(raw.count)")
    }
    return (kind, offsets)
  }

  /// Decompresses each chunk in parallel into out.
  private static func decompress(_ raw: UnsafeRawBufferPointer, kind: RunConfig.GradientCodecKind, offsets: [Int], count n: Int,
                                 into out: UnsafeMutablePointer<Float>) throws {
    let chunk = chunkElements, chunks = offsets.count - 1, width = kind == .lossless ? 4 : 2
    let base = raw.baseAddress!
    let dest = SendableFloats(out)
    let failed = FailureFlag()
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      let lo = c * chunk
      let m = min(n, lo + chunk) - lo
      let planes = UnsafeMutableRawPointer.allocate(byteCount: m * width, alignment: 64)
      defer { planes.deallocate() }
      let got = LZ4_decompress_safe(
        (base + offsets[c]).assumingMemoryBound(to: CChar.self), planes.assumingMemoryBound(to: CChar.self),
        Int32(offsets[c + 1] - offsets[c]), Int32(m * width))
      guard got == m * width else { return failed.set() }
      if width == 4 {
        BytePlanes.unshuffle(UnsafeRawPointer(planes), count: m, into: UnsafeMutableRawPointer(dest.pointer + lo))
      } else {
        BytePlanes.unpackBF16(UnsafeRawPointer(planes), count: m, into: dest.pointer + lo)
      }
    }
    if failed.isSet { throw ProtocolError("float payload does not decompress (corrupt LZ4 data)") }
  }

  private static func encode(
    kind: RunConfig.GradientCodecKind, count n: Int,
    fill: (_ chunk: Int, _ range: Range<Int>, _ planes: UnsafeMutableRawPointer) -> Void
  ) -> Data {
    let width = kind == .lossless ? 4 : 2
    let chunks = (n + chunkElements - 1) / chunkElements
    var compressed = [Data](repeating: Data(), count: chunks)
    withoutActuallyEscaping(fill) { fill in
      let box = Box(fill: fill)
      compressed.withUnsafeMutableBufferPointer { out in
        let results = SendableResults(out.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
          let range = c * chunkElements..<min(n, (c + 1) * chunkElements)
          let bytes = range.count * width
          let planes = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
          defer { planes.deallocate() }
          box.fill(c, range, planes)
          let bound = Int(LZ4_compressBound(Int32(bytes)))
          var d = Data(count: bound)
          let written = d.withUnsafeMutableBytes {
            LZ4_compress_default(planes.assumingMemoryBound(to: CChar.self), $0.baseAddress!.assumingMemoryBound(to: CChar.self),
                                 Int32(bytes), Int32(bound))
          }
          d.count = Int(written)
          results.pointer[c] = d
        }
      }
    }
    var payload = Data(capacity: 17 + 4 * chunks + compressed.reduce(0) { $0 + $1.count })
    payload.append(kind.code)
    payload.appendLE(UInt64(n))
    payload.appendLE(UInt32(chunkElements))
    payload.appendLE(UInt32(chunks))
    for c in compressed { payload.appendLE(UInt32(c.count)) }
    for c in compressed { payload.append(c) }
    return payload
  }

  private struct Box: @unchecked Sendable {
    let fill: (Int, Range<Int>, UnsafeMutableRawPointer) -> Void
  }
  private struct SendableResults: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Data>
    init(_ p: UnsafeMutablePointer<Data>) { pointer = p }
  }
  private struct SendableFloats: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
  }
  private final class FailureFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
  }
}

extension RunConfig.GradientCodecKind {
  var code: UInt8 { self == .lossless ? 1 : 2 }
  init?(code: UInt8) {
    switch code {
    case 1: self = .lossless
    case 2: self = .bf16
    default: return nil
    }
  }
}
