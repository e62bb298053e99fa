import Foundation
import Testing

@testable import IGPTCluster
@testable import IGPTKernels

@Suite struct GradientCodecTests {
  /// A gradient-like slab: mostly small normals, some exact zeros, more than one chunk.
  func slab(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SeededRandom(seed: seed)
    return (0..<n).map { i in i % 7 == 0 ? 0 : Float(rng.normal()) * 1e-3 }
  }

  /// Sizes from the wire that do not fit an Int, or chunks LZ4 could never have made, are
  /// refused (with runtime checks on, converting them used to trap and kill the coordinator).
  @Test func payloadSizesBeyondIntAreRefusedNotTrapped() throws {
    let out = UnsafeMutablePointer<Float>.allocate(capacity: 8)
    defer { out.deallocate() }
    var huge = Data([1] + [UInt8](repeating: 0xFF, count: 8))
    huge.append(contentsOf: [UInt8](repeating: 0, count: 16))
    #expect(throws: ProtocolError.self) { try GradientCodec.decode(huge, into: out, count: 8) }
    // one chunk that claims 4 GiB of compressed bytes
    var big = Data([1])
    for v in [UInt64(8)] { withUnsafeBytes(of: v.littleEndian) { big.append(contentsOf: $0) } }
    for v in [UInt32(GradientCodec.chunkElements), 1, UInt32.max] { withUnsafeBytes(of: v.littleEndian) { big.append(contentsOf: $0) } }
    #expect(throws: ProtocolError.self) { try GradientCodec.decode(big, into: out, count: 8) }
  }

  @Test func losslessRoundTripIsExact() throws {
    let n = GradientCodec.chunkElements + 12345
    let g = slab(n, seed: 1)
    let payload = g.withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: n) }
    var out = [Float](repeating: .nan, count: n)
    try out.withUnsafeMutableBufferPointer { try GradientCodec.decode(payload, into: $0.baseAddress!, count: n) }
    #expect(out.map(\.bitPattern) == g.map(\.bitPattern))
    #expect(payload.count < n * 4)  // the zeros and the shuffled exponent bytes compress
  }

  @Test func bf16KeepsTheRoundingErrorForTheNextStep() throws {
    let n = 5000
    let g = slab(n, seed: 2)
    var residual = [Float](repeating: 0, count: n)
    let payload = g.withUnsafeBufferPointer { gp in
      residual.withUnsafeMutableBufferPointer { GradientCodec.encodeBF16(gp.baseAddress!, residual: $0.baseAddress!, count: n) }
    }
    var out = [Float](repeating: 0, count: n)
    try out.withUnsafeMutableBufferPointer { try GradientCodec.decode(payload, into: $0.baseAddress!, count: n) }
    for i in 0..<n {
      // Decoded + residual is the original exactly (error feedback loses nothing over time),
      // and each decoded value is within bf16's relative precision.
      #expect(out[i] + residual[i] == g[i])
      #expect(abs(out[i] - g[i]) <= abs(g[i]) * 0.004)
      #expect(out[i].bitPattern & 0xFFFF == 0)
    }
  }

  @Test func bf16RoundsToNearestEven() throws {
    let values: [Float] = [1.0, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_8001), -2.5]
    var residual = [Float](repeating: 0, count: values.count)
    let payload = values.withUnsafeBufferPointer { v in
      residual.withUnsafeMutableBufferPointer { GradientCodec.encodeBF16(v.baseAddress!, residual: $0.baseAddress!, count: values.count) }
    }
    var out = [Float](repeating: 0, count: values.count)
    try out.withUnsafeMutableBufferPointer { try GradientCodec.decode(payload, into: $0.baseAddress!, count: values.count) }
    #expect(out.map(\.bitPattern) == [0x3F80_0000, 0x3F80_0000, 0x3F82_0000, 0x3F81_0000, (-2.5 as Float).bitPattern])
  }

  @Test func corruptPayloadsAreRejected() throws {
    let n = 3000
    let g = slab(n, seed: 3)
    let payload = g.withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: n) }
    var out = [Float](repeating: 0, count: n)
    func decode(_ d: Data, count: Int = n) throws {
      try out.withUnsafeMutableBufferPointer { try GradientCodec.decode(d, into: $0.baseAddress!, count: count) }
    }
    #expect(throws: ProtocolError.self) { try decode(payload, count: n - 1) }  // wrong size
    #expect(throws: ProtocolError.self) { try decode(payload.prefix(payload.count - 1)) }  // truncated
    #expect(throws: ProtocolError.self) { try decode(Data(count: 10)) }  // too short
    var badKind = payload
    badKind[0] = 9
    #expect(throws: ProtocolError.self) { try decode(badKind) }
    var garbled = payload
    for i in 21..<min(garbled.count, 60) { garbled[i] = 0xFF }
    #expect(throws: ProtocolError.self) { try decode(garbled) }
  }
}
