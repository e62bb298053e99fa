import Foundation
import SwiftProtobuf
import Testing

@testable import IGPTTraining

/// TensorBoard event files: TFRecord framing checked with a CRC-32C written here from its
/// definition (not igpt's), and a resumed log that never holds a step twice.
@Suite struct TensorBoardLogTests {
  /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit.
  static func crc32c(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
      c ^= UInt32(b)
      for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    }
    return ~c
  }

  static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }

  /// Records of a file parsed by hand: length, masked CRC of the length, data, masked CRC of the data.
  static func parse(_ file: [UInt8]) -> [[UInt8]] {
    func mask(_ c: UInt32) -> UInt32 { ((c >> 15) | (c << 17)) &+ 0xA282_EAD8 }
    var out: [[UInt8]] = [], at = 0
    while at + 12 <= file.count {
      let lengthBytes = Array(file[at..<(at + 8)])
      let n = Int(lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
      guard mask(crc32c(lengthBytes)) == u32(file, at + 8), at + 16 + n <= file.count else { break }
      let data = Array(file[(at + 12)..<(at + 12 + n)])
      guard mask(crc32c(data)) == u32(file, at + 12 + n) else { break }
      out.append(data)
      at += 16 + n
    }
    return out
  }

  static func steps(_ path: String) throws -> [Int64] {
    try parse(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).map { try Tensorboard_Event(serializedBytes: $0).step }
  }

  @Test func framingIsTensorFlowsAndKnownVectorsHold() {
    #expect(Self.crc32c(Array("123456789".utf8)) == 0xE306_9283)  // the CRC-32C check value
    let data = Data("hello events".utf8)
    let framed = TFRecord.frame(data)
    #expect(Self.parse(Array(framed)) == [Array(data)])
    #expect(TFRecord.records(framed).map(\.data) == [data])
    // a truncated tail (a writer killed mid-record) is not a record, and what precedes it stays
    let two = framed + TFRecord.frame(Data("second".utf8))
    #expect(TFRecord.records(two.dropLast(3)).map(\.data) == [data])
    // 12 to 15 bytes after a record: a length and its CRC, but no room for data's CRC
    for extra in 12...15 {
      #expect(TFRecord.records(framed + TFRecord.frame(Data()).prefix(extra)).map(\.data) == [data])
    }
  }

  @Test func aResumedLogCutsWhatCameAfterItsStep() throws {
    let dir = NSTemporaryDirectory() + "igpt-tb-\(getpid())-\(UUID().uuidString.prefix(6))"
    var log: TensorBoardLog? = try TensorBoardLog(runDir: dir, resumingAt: 0)
    for s in 1...5 { log!.scalars(step: s, ["loss": Double(s), "lr": 0.1]) }
    let path = log!.path
    log = nil
    #expect(try Self.steps(path) == [0, 1, 2, 3, 4, 5])
    let first = try Tensorboard_Event(serializedBytes: Self.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))[1])
    #expect(first.summary.value.map(\.tag) == ["loss", "lr"] && first.summary.value[0].simpleValue == 1)
    // killed mid-record after step 5, resumed from the checkpoint of step 3
    let handle = try #require(FileHandle(forWritingAtPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: TFRecord.frame(Data(repeating: 7, count: 40)).prefix(20))
    try handle.close()
    log = try TensorBoardLog(runDir: dir, resumingAt: 3)
    for s in 4...6 { log!.scalars(step: s, ["loss": Double(s)]) }
    log = nil
    #expect(try Self.steps(path) == [0, 1, 2, 3, 4, 5, 6])
  }
}
