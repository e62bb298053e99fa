import Foundation
import IGPTTraining

/// The coordinator with parameter-server shards (`--shards K`): it stays the scheduler, the
/// holder of the data order and the run's identity, and the owner of checkpoints; the shards
/// hold the parameters and moments between checkpoints, sum the gradients and apply the
/// update it decides from their norm partials (`ShardRoster`, `ShardServer`).
extension Coordinator {
  /// A shard asking to serve: its slice, then the slice's state at the run's version.
  func shardHello(_ m: Message, from id: Data, address: String) {
    guard var roster = shards else {
      send(Message(.refuse, meta: Wire.Refuse(reason: "this coordinator runs without parameter-server shards (start it with --shards K)", fatal: true)), to: id)
      return
    }
    guard let h = try? m.decodeMeta(Wire.ShardHello.self) else {
      badInput.note("dropped a malformed shard hello from \(address)")
      return
    }
    if let k = roster.index(of: id),
       let why = ShardRoster.whyUnrestorable(pulledVersion: pulledVersion, version: version,
                                             gradientSent: phase.training && scheduler.anySent(.training)) {
      shardStateLost = "parameter-server shard \(k + 1) (\(roster.members[k]!.label)) lost its state: it said hello again at step \(trainer.step), and \(why)"
      return
    }
    guard let k = roster.admit(id, h, now: Date()) else {
      send(Message(.refuse, meta: Wire.Refuse(reason: "all \(roster.count) shards are served", fatal: false)), to: id)
      return
    }
    shards = roster
    events.record("shard_join", ["shard": k, "name": h.name, "endpoint": h.endpoint, "host": h.host, "pid": Int(h.pid)],
                  line: "shard \(k + 1) of \(roster.count): \(h.name) on \(h.host) serves values \(roster.plan.elements(k)) at \(h.endpoint)")
    let w = Wire.ShardWelcome(runHash: runHash, index: k, shards: roster.count, total: trainer.model.parameterCount,
                              microbatches: trainer.microbatchesPerStep, codec: config.cluster.codec, train: config.train,
                              heartbeatInterval: interval, heartbeatMisses: config.cluster.heartbeatMisses)
    send(Message(.shardWelcome, runHash: runHash, version: version, meta: w), to: id)
    restoreShard(k)
  }

  /// Sends shard k its slice of the trainer's parameters and moments (a new run's, or the checkpoint's).
  func restoreShard(_ k: Int) {
    guard let roster = shards, let member = roster.members[k] else { return }
    let r = roster.plan.elements(k)
    for (part, slab) in stateSlabs.enumerated() {
      let body = GradientCodec.encode(slab + r.lowerBound, count: r.count)
      send(Message(.shardState, runHash: runHash, version: version, meta: Wire.ShardState(steps: trainer.optimizer.steps, part: part), body: body),
           to: member.id)
    }
  }

  /// The slabs a shard's state parts come from and go to: parameters, then both moments.
  var stateSlabs: [UnsafeMutablePointer<Float>] { [trainer.model.params, trainer.optimizer.m, trainer.optimizer.v] }

  /// A message from admitted shard k.
  func fromShard(_ m: Message, _ k: Int) throws {
    guard m.runHash == runHash || m.kind == .heartbeat else { return }
    switch m.kind {
    case .updated: shards!.reached(k, version: m.version)
    case .partials:
      let n = shards!.plan.chunks(k).count
      guard m.version == version, let values = m.body.doubles(count: n), shards!.partials(k, step: m.version, values) else {
        throw ProtocolError("norm partials of step \(m.version) (at \(version)) that are not \(n) finite values")
      }
    case .shardState: try pulled(m, k)
    case .heartbeat: break
    default: badInput.note("dropped unexpected \(m.kind) message from shard \(k + 1)")
    }
  }

  /// A part of a shard's state (asked for by `pullShards`), decoded in place into the trainer.
  private func pulled(_ m: Message, _ k: Int) throws {
    let s = try m.decodeMeta(Wire.ShardState.self)
    let r = shards!.plan.elements(k)
    guard m.version == version, s.steps == trainer.optimizer.steps, (0..<3).contains(s.part) else {
      throw ProtocolError("shard state part \(s.part) at version \(m.version) after \(s.steps) updates (the run is at \(version))")
    }
    try GradientCodec.decode(m.body, into: stateSlabs[s.part] + r.lowerBound, count: r.count)
    pulledParts[k, default: []].insert(s.part)
  }

  /// Runs the loop's I/O, handing out no new work, until `done`; throws when a shard is lost.
  func serve(until done: () -> Bool, waiting what: String) throws {
    var lastNote = Date()
    while !done() {
      ZMQSocket.poll(zap.map { [socket, $0.socket] } ?? [socket], timeout: 0.05)
      zap?.serve()
      while let m = socket.receive() { handle(m) }
      let now = Date()
      heartbeatIfDue(now: now)
      excuseOwnStall(now: now)
      try checkShards(now: now)
      if now.timeIntervalSince(lastNote) >= 10 {
        lastNote = now
        events.say("waiting for \(what)")
      }
    }
  }

  /// At the start: every shard restored at the run's version; workers that came first are welcomed.
  func awaitShards() throws {
    guard let roster = shards else { return }
    try serve(until: { shards!.allAt(version) }, waiting: "\(roster.count) parameter-server shards (start them with: igpt server --connect \(endpoint))")
    for (m, id, address) in waitingHellos { hello(m, from: id, address: address) }
    waitingHellos = []
    pulledVersion = version  // the state the shards were restored from is the trainer's
  }

  /// The step's update, decided from the shards' norm partials as `igpt train` decides it, and
  /// applied by each shard to its slice.
  func shardedUpdate() throws -> Trainer.StepResult {
    let norm = shards!.norm(step: version)!
    let lr = trainer.schedule.rate(at: trainer.step)
    let update = Message(.update, runHash: runHash, version: version,
                         meta: Wire.Update(learningRate: lr, gradScale: Optimizer.clipScale(norm: norm, clip: config.train.clip)))
    for member in shards!.members { send(update, to: member!.id) }
    let next = version + 1
    try serve(until: { shards!.allAt(next) }, waiting: "the shards' update of step \(trainer.step)")
    return trainer.recordUpdate(loss: server.stepLoss, gradNorm: norm, learningRate: lr)
  }

  /// The shards' parameters and moments into the trainer (before a checkpoint or a probe job).
  func pullShards() throws {
    guard let roster = shards, pulledVersion != version else { return }
    pulledParts = [:]
    for member in roster.members { send(Message(.pull, runHash: runHash, version: version), to: member!.id) }
    try serve(until: { pulledParts.count == roster.count && pulledParts.values.allSatisfy { $0.count == 3 } },
              waiting: "the shards' state of step \(trainer.step)")
    pulledVersion = version
  }

  /// A silent shard ends the run: its slice exists nowhere else since the last checkpoint.
  func checkShards(now: Date) throws {
    if let lost = shardStateLost {
      let last = Checkpoint.newestState(runDir: training.runDir)?.step ?? 0
      events.record("shard_lost", ["reason": lost, "checkpoint_step": last], line: lost)
      throw ClusterError("\(lost); the run stops at its last checkpoint (step \(last)): restart the coordinator with --resume")
    }
    guard let roster = shards, let (k, seconds) = roster.silent(now: now, deadAfter: interval * Double(config.cluster.heartbeatMisses)).first else { return }
    let last = Checkpoint.newestState(runDir: training.runDir)?.step ?? 0
    let who = roster.members[k]!.label
    events.record("shard_lost", ["shard": k, "name": roster.members[k]!.hello.name, "silent_s": seconds, "checkpoint_step": last],
                  line: "parameter-server shard \(k + 1) \(who) lost")
    throw ClusterError(String(format: "parameter-server shard %d (%@) lost: no heartbeat for %.1f s; the run stops at its last checkpoint (step %d): restart the shard, then the coordinator with --resume",
                              k + 1, who, seconds, last))
  }
}
