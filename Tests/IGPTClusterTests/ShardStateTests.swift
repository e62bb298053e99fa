import Foundation
import IGPTKernels
import Testing
@testable import IGPTCluster
@testable import IGPTTraining

/// K parameter-server shards, without sockets: summing blocks in any order over their slices,
/// adding their norm partials in chunk order and updating their slices give the bytes of one
/// optimizer on the whole slab (`igpt train`), for any K the plan allows.
@Suite struct ShardStateTests {
  static let total = 10_007  // not a multiple of 16: the last chunk is short
  static let microbatches = 5  // not a power of two: the tree has missing leaves

  static func gradients(step: Int) -> [[Float]] {
    var rng = SeededRandom(seed: UInt64(100 + step))
    return (0..<microbatches).map { _ in (0..<total).map { _ in Float(rng.normal()) * 0.01 } }
  }

  @Test func planCutsOnNormChunks() throws {
    for k in [1, 2, 3, 4, 5, 16] {
      let plan = try ShardPlan(total: Self.total, shards: k)
      #expect((0..<k).map { plan.elements($0).count }.reduce(0, +) == Self.total)
      #expect(plan.elements(0).lowerBound == 0 && plan.elements(k - 1).upperBound == Self.total)
      for i in 1..<k { #expect(plan.elements(i - 1).upperBound == plan.elements(i).lowerBound) }
      #expect((0..<k).flatMap { Array(plan.chunks($0)) } == Array(0..<16))
    }
    #expect(throws: ConfigError.self) { _ = try ShardPlan(total: 100, shards: 17) }
    #expect(throws: ConfigError.self) { _ = try ShardPlan(total: 100, shards: 0) }
  }

  @Test(arguments: [1, 2, 3, 4, 16])
  func shardsUpdateTheBytesOneOptimizerDoes(shards k: Int) throws {
    var t = RunConfig.Train()
    t.weightDecay = 0.01
    let clip = 0.05  // small enough that every step clips
    var rng = SeededRandom(seed: 9)
    let initial = (0..<Self.total).map { _ in Float(rng.normal()) * 0.02 }
    let tree = GradientTree(count: Self.microbatches)
    // one optimizer on the whole slab
    let reference = Optimizer(count: Self.total)
    var params = initial
    // K shards
    let plan = try ShardPlan(total: Self.total, shards: k)
    let shards = (0..<k).map { ShardState(plan: plan, index: $0, tree: tree) }
    for s in shards {  // the parameters from the coordinator; the moments start at zero
      try s.restore(part: 0, body: initial[s.elements].withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: s.count) })
      s.restored(steps: 0, version: 0)
    }
    for step in 0..<3 {
      let g = Self.gradients(step: step)
      let sum = GradientReduction(tree: tree, parameterCount: Self.total, output: reference.gradient)
      for (i, leaf) in g.enumerated() { leaf.withUnsafeBufferPointer { _ = sum.add(tree.leaf(i), values: $0.baseAddress!) } }
      let lr = 0.001 * Double(step + 1)
      let norm = params.withUnsafeMutableBufferPointer {
        reference.update(params: $0.baseAddress!, learningRate: lr, clip: clip, beta1: t.beta1, beta2: t.beta2, weightDecay: t.weightDecay)
      }
      // the shards get the leaves last first, each its slice, one duplicate refused
      for i in (0..<Self.microbatches).reversed() {
        for s in shards {
          let body = g[i][s.elements].withUnsafeBufferPointer { GradientCodec.encode($0.baseAddress!, count: s.count) }
          #expect(try s.add(block: tree.leaf(i), body: body) != .duplicate)
          if i == 0 { #expect(try s.add(block: tree.leaf(i), body: body) == .duplicate) }
        }
      }
      #expect(shards.allSatisfy { $0.isComplete })
      let shardNorm = Optimizer.norm(partials: shards.flatMap { $0.normPartials() })
      #expect(shardNorm == norm)
      for s in shards { s.update(learningRate: lr, gradScale: Optimizer.clipScale(norm: shardNorm, clip: clip), config: t) }
    }
    let joined = { (slab: (ShardState) -> UnsafeMutablePointer<Float>) in shards.flatMap { Array(UnsafeBufferPointer(start: slab($0), count: $0.count)) } }
    #expect(joined { $0.params } == params)
    #expect(joined { $0.optimizer.m } == Array(UnsafeBufferPointer(start: reference.m, count: Self.total)))
    #expect(joined { $0.optimizer.v } == Array(UnsafeBufferPointer(start: reference.v, count: Self.total)))
    #expect(shards.allSatisfy { $0.version == 3 && $0.optimizer.steps == 3 })
  }
}

/// The coordinator's view of its shards, without sockets.
@Suite struct ShardRosterTests {
  static func hello(_ name: String) -> Wire.ShardHello { Wire.ShardHello(name: name, host: "h", pid: 1, endpoint: "tcp://h:\(name.count)") }

  /// A shard that said hello again is restored from the coordinator's copy only if that copy is
  /// the current version and none of the step's gradient went out (its partial sums are gone).
  @Test func aShardThatSaidHelloAgainIsRestoredOnlyBeforeTheStepsGradientWentOut() throws {
    #expect(ShardRoster.whyUnrestorable(pulledVersion: nil, version: 0, gradientSent: true) == nil)  // the start
    #expect(ShardRoster.whyUnrestorable(pulledVersion: 40, version: 40, gradientSent: false) == nil)
    #expect(ShardRoster.whyUnrestorable(pulledVersion: 40, version: 40, gradientSent: true)?.contains("gradient of step 41") == true)
    #expect(ShardRoster.whyUnrestorable(pulledVersion: 39, version: 40, gradientSent: false)?.contains("state of step 39 only") == true)
    // its partials of the step go with it: the norm waits for them again
    let plan = try ShardPlan(total: 1000, shards: 2)
    var r = ShardRoster(plan: plan)
    _ = r.admit(Data([1]), Self.hello("a"), now: Date())
    _ = r.admit(Data([2]), Self.hello("b"), now: Date())
    for k in 0..<2 { _ = r.partials(k, step: 5, plan.chunks(k).map { _ in 1 }) }
    #expect(r.norm(step: 5) != nil)
    #expect(r.admit(Data([2]), Self.hello("b"), now: Date()) == 1)
    #expect(r.norm(step: 5) == nil)
  }

  @Test func slicesGoInOrderOfArrivalAndTheNormWaitsForEveryShard() throws {
    let plan = try ShardPlan(total: 1000, shards: 3)
    var r = ShardRoster(plan: plan)
    let t0 = Date()
    let a = r.admit(Data([1]), Self.hello("a"), now: t0)
    #expect(a == 0 && r.endpoints == nil)
    let b = r.admit(Data([2]), Self.hello("bb"), now: t0), c = r.admit(Data([3]), Self.hello("ccc"), now: t0)
    let late = r.admit(Data([4]), Self.hello("late"), now: t0)
    #expect(b == 1 && c == 2 && late == nil)
    #expect(r.endpoints?.map(\.lower) == [0, plan.elements(1).lowerBound, plan.elements(2).lowerBound])
    #expect(r.endpoints?.last?.upper == 1000)
    // restored: every shard must be at the version
    #expect(!r.allAt(0))
    for k in 0..<3 { r.reached(k, version: 0) }
    #expect(r.allAt(0) && !r.allAt(1))
    // partials: the right count per shard, and the norm only once all three are in
    let parts = (0..<3).map { k in plan.chunks(k).map { Double($0 + 1) } }
    let short = r.partials(0, step: 0, [1])
    let first = r.partials(0, step: 0, parts[0]), third = r.partials(2, step: 0, parts[2])
    #expect(!short && first && third)
    #expect(r.norm(step: 0) == nil)
    let second = r.partials(1, step: 0, parts[1])
    #expect(second)
    #expect(r.norm(step: 0) == Optimizer.norm(partials: (1...16).map(Double.init)))
    #expect(r.norm(step: 1) == nil)
    let notFinite = r.partials(1, step: 0, parts[1].map { _ in .nan })
    #expect(!notFinite)
    // silence
    r.heard(Data([1]), now: t0.addingTimeInterval(10))
    r.heard(Data([3]), now: t0.addingTimeInterval(10))
    #expect(r.silent(now: t0.addingTimeInterval(11), deadAfter: 5).map(\.index) == [1])
    // a shard saying hello again gets a slice afresh (the first free one)
    let again = r.admit(Data([2]), Self.hello("bb"), now: t0)
    #expect(again == 1)
  }
}
