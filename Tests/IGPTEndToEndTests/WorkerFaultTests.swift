import Foundation
@testable import IGPTCluster
import IGPTModel
import IGPTTraining
import IGPTTestSupport
import Testing

/// A real `igpt worker` against a coordinator played by the test (FakeCoordinator): what it does
/// with malformed messages, a welcome in the middle of a job, a feature task whose probe is
/// gone, and a result it cannot send at once.
@Suite(.serialized) struct WorkerFaultTests {
  static let small = ModelConfig(layers: 1, embd: 16, heads: 2, seq: 8, vocab: 4)

  /// A fake coordinator on `port`, a real worker connected to it, and the worker's hello.
  func start(_ name: String, port: Int, receiveHighWaterMark: Int32? = nil) throws
    -> (fake: FakeCoordinator, worker: ClusterProcess, hello: (id: Data, message: Message))
  {
    let fake = try FakeCoordinator(port: port, receiveHighWaterMark: receiveHighWaterMark)
    let w = try ClusterProcess("w", ["worker", "--connect", "tcp://127.0.0.1:\(port)", "--give-up-after", "30"],
                               logDir: Fixtures.directory(name))
    guard let hello = fake.next([.hello]) else {
      w.kill()
      throw ClusterError("no hello from the worker: \(w.log)")
    }
    return (fake, w, hello)
  }

  @Test func malformedWelcomeAndRefuseAreDroppedNotFatal() throws {
    let (fake, w, hello) = try start("worker-malformed", port: 5941)
    defer { w.kill() }
    #expect(try hello.message.decodeMeta(Wire.Hello.self).numerics?.openblasCore != nil, "the hello says the worker's numerics")
    fake.send(Message(.welcome, runHash: fake.runHash, meta: Data("{\"runHash\": 1}".utf8)), to: hello.id)
    fake.send(Message(.refuse, meta: Data("not json".utf8)), to: hello.id)
    fake.send(try fake.welcome(Self.small), to: hello.id)
    let ready = try #require(fake.next([.ready]), "\(w.log)")
    #expect(w.process.isRunning, "\(w.log)")
    #expect(w.log.contains("dropped welcome") && w.log.contains("dropped refuse"), "\(w.log)")
    #expect(try ready.message.decodeMeta(Wire.Ready.self).numerics?.shape.embd == 16, "the ready carries its fingerprint")
  }

  /// A coordinator restarted with another config welcomes the worker again while it computes:
  /// the job in hand ends with the model, threads and codec state it started with, then the new
  /// welcome is set up (before, it was set up at once: the job's bf16 residual was freed and the
  /// thread count changed under it).
  @Test func aWelcomeDuringAJobIsSetUpWhenTheJobEnds() throws {
    let (fake, w, hello) = try start("worker-rewelcome", port: 5943)
    defer { w.kill() }
    let big = ModelConfig(layers: 4, embd: 128, heads: 4, seq: 256, vocab: 16)
    fake.send(try fake.welcome(big, codec: .bf16), to: hello.id)
    _ = try #require(fake.next([.ready]), "\(w.log)")
    let n = try IGPT(config: big).parameterCount
    fake.send(fake.params(count: n), to: hello.id)
    fake.send(fake.task(id: 1, count: 32, length: 256), to: hello.id)
    usleep(200_000)  // the job is computing (it takes about a second)
    fake.send(try fake.welcome(Self.small, threads: 2), to: hello.id)
    let first = try #require(fake.next([.ready, .result]), "\(w.log)")
    #expect(first.message.kind == .result, "the job's result comes before the new welcome's ready: \(w.log)")
    let r = try first.message.decodeMeta(Wire.Result.self)
    #expect(r.id == 1 && r.losses.count == 1 && r.losses[0].isFinite)
    #expect(first.message.body.first == RunConfig.GradientCodecKind.bf16.code)
    let ready = try #require(fake.next([.ready]), "\(w.log)")
    #expect(try ready.message.decodeMeta(Wire.Ready.self).numerics?.threads == 2)
    #expect(w.process.isRunning, "\(w.log)")
  }

  /// A feature task whose probe job has ended: the coordinator answers the worker's fetch with
  /// "gone" (no parameters at that version), and the worker drops the task instead of fetching
  /// again and again with its queue blocked behind it.
  @Test func aFeatureTaskOfAnEndedProbeIsDropped() throws {
    let (fake, w, hello) = try start("worker-probe-gone", port: 5945)
    defer { w.kill() }
    fake.send(try fake.welcome(Self.small), to: hello.id)
    _ = try #require(fake.next([.ready]), "\(w.log)")
    let probeVersion = Message.probeSnapshotBase + 7
    fake.send(fake.task(id: 1, kind: .features, count: 2, length: 8, version: probeVersion), to: hello.id)
    fake.send(fake.task(id: 2, count: 2, length: 8), to: hello.id)
    let fetch = try #require(fake.next([.fetch]), "\(w.log)")
    #expect(fetch.message.version == probeVersion)
    fake.send(Message(.params, runHash: fake.runHash, version: probeVersion), to: hello.id)  // gone
    // the gradient task behind it still needs parameters: fetched and computed
    let second = try #require(fake.next([.fetch]), "the worker fetches again: \(w.log)")
    #expect(second.message.version == 0, "it fetches the gradient task's version, not the probe's again")
    fake.send(fake.params(count: try IGPT(config: Self.small).parameterCount), to: hello.id)
    let result = try #require(fake.next([.result], timeout: 10), "\(w.log)")
    #expect(try result.message.decodeMeta(Wire.Result.self).id == 2)
  }

  /// A result the worker cannot hand to ZeroMQ at once (its queue to the coordinator is full:
  /// the coordinator is busy and reads nothing) is kept and sent when the queue drains, not
  /// dropped to wait for the task timeout.
  @Test func aResultThatCannotBeSentAtOnceIsSentLater() throws {
    let (fake, w, hello) = try start("worker-send-full", port: 5947, receiveHighWaterMark: 1)
    defer { w.kill() }
    // about 40 MB of gradient: the first result alone fills the TCP buffers
    let wide = ModelConfig(layers: 2, embd: 640, heads: 10, seq: 8, vocab: 4)
    fake.send(try fake.welcome(wide, interval: 0.02, misses: 5000), to: hello.id)
    _ = try #require(fake.next([.ready]), "\(w.log)")
    fake.send(fake.params(count: try IGPT(config: wide).parameterCount), to: hello.id)
    fake.send(fake.task(id: 1, count: 1, length: 8), to: hello.id)
    // read nothing for 3 s: result 1 blocks the connection, heartbeats fill the worker's queue (64)
    Thread.sleep(forTimeInterval: 3)
    fake.send(fake.task(id: 2, count: 1, length: 8), to: hello.id)
    Thread.sleep(forTimeInterval: 2)
    var results: Set<UInt64> = []
    let deadline = Date().addingTimeInterval(20)
    while results.count < 2, Date() < deadline, let r = fake.next([.result], timeout: 1) {
      results.insert(try r.message.decodeMeta(Wire.Result.self).id)
    }
    #expect(results == [1, 2], "\(w.log)")
    #expect(w.log.contains("kept to send again"), "\(w.log)")
  }
}
