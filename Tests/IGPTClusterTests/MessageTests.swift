import CChecksum
import Foundation
import Testing

@testable import IGPTCluster
@testable import IGPTTraining

@Suite struct MessageTests {
  @Test func roundTripKeepsEveryField() throws {
    let task = Wire.Task(id: 7, kind: .gradient, step: 3, micro: 1, count: 2, length: 4, scale: 0.5, hasMask: false)
    let m = Message(.task, runHash: 0xDEAD_BEEF, version: 3, meta: task, body: Wire.Task.body(tokens: [0, 1, 2, 3, 3, 2, 1, 0], mask: []))
    let back = try Message.decode(m.encode())
    #expect(back == m)
    let t = try back.decodeMeta(Wire.Task.self)
    #expect(t.id == 7 && t.step == 3 && t.micro == 1 && t.scale == 0.5)
    let body = try t.decodeBody(back.body, vocab: 4)
    #expect(body.tokens == [0, 1, 2, 3, 3, 2, 1, 0] && body.mask.isEmpty)
    #expect(throws: ProtocolError.self) { try t.decodeBody(back.body, vocab: 3) }  // token 3 outside the palette
  }

  @Test func everyKindOfDamageIsRejectedWithAReason() throws {
    let good = Message(.result, runHash: 1, version: 2, meta: Data("{\"a\":1}".utf8), body: Data(repeating: 5, count: 64)).encode()
    func reason(_ d: Data) -> String {
      do {
        _ = try Message.decode(d)
        return "accepted"
      } catch { return "\(error)" }
    }
    #expect(reason(Data()).contains("shorter than"))
    #expect(reason(good.prefix(39)).contains("shorter than"))
    #expect(reason(good.prefix(good.count - 1)).contains("disagree"))
    #expect(reason(good + Data([0])).contains("disagree"))
    var magic = good
    magic[0] = UInt8(ascii: "X")
    #expect(reason(magic).contains("magic"))
    var version = good
    let other = Message.protocolVersion + 1
    version[4] = UInt8(other)
    do {
      _ = try Message.decode(version)
      Issue.record("accepted another protocol version")
    } catch let e as ProtocolError {
      #expect(e.otherVersion == other && e.description.contains("protocol version \(other)"))
    }
    var kind = good
    kind[6] = 200
    #expect(reason(kind).contains("unknown message type"))
    var flipped = good
    flipped[good.count - 3] ^= 0x10
    #expect(reason(flipped).contains("checksum"))
    var huge = good
    for i in 28..<36 { huge[i] = 0xFF }  // a body length near 2^64 must not trap
    #expect(reason(huge).contains("disagree"))
    #expect(reason(good) == "accepted")
  }

  /// The message checksum is CRC-32C: the standard check value, and the hardware and table
  /// paths agree on every length and alignment.
  /// count x length from the wire must not overflow into a size an empty body matches
  /// (2^62 x 4 wraps to 0 in unchecked arithmetic).
  @Test func aTaskWhoseSizeOverflowsIsRejected() {
    for (count, length) in [(1 << 62, 4), (Int.max, 2), (1 << 61, 8)] {
      let t = Wire.Task(id: 1, kind: .gradient, step: 0, micro: 0, count: count, length: length, scale: 1, hasMask: false)
      #expect(throws: ProtocolError.self) { try t.decodeBody(Data(), vocab: 4) }
      let masked = Wire.Task(id: 1, kind: .gradient, step: 0, micro: 0, count: count, length: length, scale: 1, hasMask: true)
      #expect(throws: ProtocolError.self) { try masked.decodeBody(Data(count: 5), vocab: 4) }
    }
  }

  /// The probe-job list reports what it cannot save (it used to return as if saved).
  @Test func probeJobsThatCannotBeSavedAreReported() throws {
    for blocker in ["probe-jobs.json.tmp", "probe-jobs.json"] {
      let dir = NSTemporaryDirectory() + "igpt-probe-queue-\(getpid())-\(UUID().uuidString.prefix(6))"
      // a directory where the temporary file (or the list) must go: the write (or the rename) fails
      try FileManager.default.createDirectory(atPath: dir + "/" + blocker + "/x", withIntermediateDirectories: true)
      var lines: [String] = []
      let q = ProbeQueue(runDir: dir, log: { lines.append($0) })
      q.add(ProbeJob.Request(layers: "1", trainImages: 10, evalImages: 10), origin: "submitted", step: 0)
      #expect(q.jobs.count == 1, "the job still runs")
      #expect(lines.contains { $0.contains("probe jobs not saved") && $0.contains("probe-jobs.json") }, "\(blocker): \(lines)")
      #expect(throws: (any Error).self) { try q.save() }
    }
  }

  @Test func messageChecksumIsCRC32C() {
    let check = Array("123456789".utf8)
    #expect(igpt_crc32c(0, check, check.count) == 0xE306_9283)
    #expect(igpt_crc32c_portable(0, check, check.count) == 0xE306_9283)
    var rng = SystemRandomNumberGenerator()
    let bytes = (0..<4099).map { _ in UInt8.random(in: 0...255, using: &rng) }
    bytes.withUnsafeBytes { raw in
      for (start, count) in [(0, 4099), (1, 4000), (3, 17), (5, 0), (7, 8)] {
        let p = raw.baseAddress! + start
        #expect(igpt_crc32c(0, p, count) == igpt_crc32c_portable(0, p, count))
      }
      // continuing across a split equals one pass
      let whole = igpt_crc32c(0, raw.baseAddress, 4099)
      #expect(igpt_crc32c(igpt_crc32c(0, raw.baseAddress, 1000), raw.baseAddress! + 1000, 3099) == whole)
    }
  }

  @Test func clusterSectionIsParsedAndChecked() throws {
    let c = try RunConfig.parse("cluster: {codec: bf16, heartbeat_interval: 0.5, heartbeat_misses: 3, task_timeout: 9}")
    #expect(c.cluster.codec == .bf16 && c.cluster.heartbeatInterval == 0.5 && c.cluster.heartbeatMisses == 3 && c.cluster.taskTimeout == 9)
    #expect(throws: ConfigError.self) { try RunConfig.parse("cluster: {codec: zip}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("cluster: {heartbeat_misses: 1}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("cluster: {port: 1}") }
  }

  @Test func probeAndRecomputeSettingsAreParsedAndChecked() throws {
    let c = try RunConfig.parse("probes: {labels_per_class: 5, concat: 3, raw_pixels: true, masks: 4}\ntrain: {recompute: true}")
    #expect(c.probes.labelsPerClass == 5 && c.probes.concat == 3 && c.probes.rawPixels && c.probes.masks == 4)
    #expect(c.train.recompute)
    #expect(throws: ConfigError.self) { try RunConfig.parse("probes: {masks: 0}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("probes: {raw_pixels: 3}") }
    #expect(throws: ConfigError.self) { try RunConfig.parse("train: {recompute: yes please}") }
    // a request takes the config's defaults, a submission overrides them, and bad values are named
    let r = ProbeJob.Request(c.probes, overriddenBy: Wire.ProbeSubmit(layers: "1", trainImages: nil, evalImages: nil, concat: 0))
    #expect(r.layers == "1" && r.concat == 0 && r.labelsPerClass == 5 && r.rawPixels && r.masks == 4)
    #expect(r.problem(modelLayers: 4) == nil)
    #expect(ProbeJob.Request(layers: "1", trainImages: 40, evalImages: 10, concat: 9).problem(modelLayers: 4)?.contains("concat") == true)
    // recompute is memory, not bytes: a worker may differ in it
    var w = c
    w.train.recompute = false
    #expect(RunIdentity.difference(mine: c, theirs: w) == nil)
  }

  @Test func configDifferencesNameTheKey() throws {
    let a = try RunConfig.parse("train: {lr: 0.01, threads: 1}")
    var b = a
    b.train.threads = 4  // per-host settings may differ
    b.data.store = "/elsewhere"
    b.probes.every = 100  // coordinator-only schedules do not matter either
    b.checkpoint.every = 7
    #expect(RunIdentity.difference(mine: a, theirs: b) == nil)
    b.train.lr = 0.02
    #expect(RunIdentity.difference(mine: a, theirs: b)?.hasPrefix("train.lr") == true)
    b = a
    b.cluster.codec = .bf16
    #expect(RunIdentity.difference(mine: a, theirs: b)?.hasPrefix("cluster.codec") == true)
  }
}
