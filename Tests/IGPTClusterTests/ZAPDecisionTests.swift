import Foundation
import Testing
@testable import IGPTCluster

/// The ZAP handler's decisions (RFC 27), without sockets: only an allow-listed CURVE key gets 200.
@Suite struct ZAPDecisionTests {
  static func request(mechanism: String, key: [UInt8]? = nil) -> [Data] {
    [Data("1.0".utf8), Data("7".utf8), Data(), Data("10.0.0.9".utf8), Data(), Data(mechanism.utf8)] + (key.map { [Data($0)] } ?? [])
  }

  @Test func onlyAnAllowedCurveKeyIsAdmitted() throws {
    let (allowed, _) = try CurveKey.generatePair()
    let (other, _) = try CurveKey.generatePair()
    let raw = { (k: CurveKey) in k.bytes }
    let ok = try #require(ZAPHandler.decide(Self.request(mechanism: "CURVE", key: raw(allowed)), allowed: [allowed]))
    #expect(ok.reply.map { String(decoding: $0, as: UTF8.self) } == ["1.0", "7", "200", "OK", allowed.z85, ""])
    #expect(ok.refusal == nil)
    let no = try #require(ZAPHandler.decide(Self.request(mechanism: "CURVE", key: raw(other)), allowed: [allowed]))
    #expect(String(decoding: no.reply[2], as: UTF8.self) == "400" && no.refusal == .keyNotAllowed(address: "10.0.0.9", key: other))
    let null = try #require(ZAPHandler.decide(Self.request(mechanism: "NULL"), allowed: [allowed]))
    #expect(String(decoding: null.reply[2], as: UTF8.self) == "400" && null.refusal == .notCurve(address: "10.0.0.9", mechanism: "NULL"))
    #expect(CurveKey(bytes: allowed.bytes) == allowed)
    let shortKey = try #require(ZAPHandler.decide(Self.request(mechanism: "CURVE", key: [1, 2, 3]), allowed: [allowed]))
    #expect(String(decoding: shortKey.reply[2], as: UTF8.self) == "400")
    #expect(ZAPHandler.decide(Array(Self.request(mechanism: "CURVE").prefix(5)), allowed: [allowed]) == nil)
  }
}
