import Foundation
import IGPTModel
import IGPTTraining

/// The shard's dispatch: the coordinator's instructions, and workers' pushes and fetches.
extension ShardServer {
  /// Handles one message from the coordinator; an outcome when the shard must stop.
  func fromCoordinator(_ r: ZMQSocket.Received) throws -> Outcome? {
    guard r.frames.count == 1, let m = try? Message.decode(r.frames[0]) else {
      badInput.note("dropped a malformed message from the coordinator")
      return nil
    }
    do {
      switch m.kind {
      case .shardWelcome: try welcomed(try m.decodeMeta(Wire.ShardWelcome.self))
      case .refuse:
        let why = try m.decodeMeta(Wire.Refuse.self)
        if why.fatal { return .refused(why.reason) }
        options.log("coordinator: \(why.reason)")
      case .done: return .done(step: (try? m.decodeMeta(Wire.Done.self))?.step ?? -1)
      case .reset:
        forget()
        sayHello()
      case .heartbeat: break
      case .shardState, .update, .pull:
        guard let state, m.runHash == welcome?.runHash else { return nil }
        switch m.kind {
        case .shardState: try restore(state, m)
        case .update: try update(state, m)
        default: pull(state, m)
        }
      default: badInput.note("dropped unexpected \(m.kind) message from the coordinator")
      }
    } catch {
      badInput.note("dropped \(m.kind) from the coordinator: \(error)")
    }
    return nil
  }

  private func welcomed(_ w: Wire.ShardWelcome) throws {
    let plan = try ShardPlan(total: w.total, shards: w.shards)
    guard (0..<w.shards).contains(w.index), w.microbatches >= 1, w.microbatches <= 1 << 20 else { throw ProtocolError("shard welcome out of range") }
    let slice = Double(plan.elements(w.index).count)
    let tree = GradientTree(count: w.microbatches)
    // params, m, v, the step's sum, a decode buffer and the waiting partial sums (at worst one
    // per pending block: half the step's microbatches)
    try MemoryBudget.check(4 * slice * (5 + Double(tree.count + 1) / 2), for: "shard \(w.index) of \(w.shards)")
    if welcome?.runHash != w.runHash || welcome?.index != w.index || state?.plan != plan {
      state = ShardState(plan: plan, index: w.index, tree: tree)
      options.log("shard \(w.index + 1) of \(w.shards) for run \(String(w.runHash, radix: 16)): values \(plan.elements(w.index)) of \(w.total), serving workers on \(endpoint)")
    }
    // the largest message a worker may send: a gradient slice (lossless, with LZ4's bound);
    // workers connect after this (the coordinator names the shard only once it is restored)
    let n = Int(slice)
    try workers.setMaxMessageSize(4 * n + 4 * n / 255 + 64 * (n / GradientCodec.chunkElements + 1) + (1 << 20))
    welcome = w
    waitingFetches = []
  }

  /// A part of the slice's state from the coordinator (a new run or a checkpoint); once all
  /// three are in, answered `updated`.
  private func restore(_ state: ShardState, _ m: Message) throws {
    let s = try m.decodeMeta(Wire.ShardState.self)
    guard (0..<3).contains(s.part) else { throw ProtocolError("shard state part \(s.part)") }
    if restoring?.version != m.version { restoring = (m.version, []) }
    try state.restore(part: s.part, body: m.body)
    restoring!.parts.insert(s.part)
    guard restoring!.parts.count == 3 else { return }
    restoring = nil
    state.restored(steps: s.steps, version: m.version)
    partialsSent = nil
    toCoordinator(Message(.updated, runHash: welcome!.runHash, version: state.version, meta: Wire.Updated(index: state.index)))
    answerWaitingFetches(state)
  }

  private func update(_ state: ShardState, _ m: Message) throws {
    guard m.version == state.version, state.isComplete else {
      throw ProtocolError("update of step \(m.version) at version \(state.version)\(state.isComplete ? "" : " before the step's gradient is complete")")
    }
    let u = try m.decodeMeta(Wire.Update.self)
    state.update(learningRate: u.learningRate, gradScale: u.gradScale, config: welcome!.train)
    toCoordinator(Message(.updated, runHash: welcome!.runHash, version: state.version, meta: Wire.Updated(index: state.index)))
    answerWaitingFetches(state)
  }

  private func pull(_ state: ShardState, _ m: Message) {
    for part in 0..<3 {
      let body = GradientCodec.encode(state.slab(part), count: state.count)
      toCoordinator(Message(.shardState, runHash: welcome!.runHash, version: state.version,
                            meta: Wire.ShardState(steps: state.optimizer.steps, part: part), body: body))
    }
  }

  /// A worker's push or fetch (workers need no hello: the run hash says whose they are).
  func fromWorker(_ r: ZMQSocket.Received) {
    guard r.frames.count == 2, let m = try? Message.decode(r.frames[1]) else {
      badInput.note("dropped a malformed message from \(r.peerAddress)")
      return
    }
    let id = r.frames[0]
    guard let state, let w = welcome, m.runHash == w.runHash else {
      if m.kind == .push, let p = try? m.decodeMeta(Wire.Push.self) {
        toWorker(Message(.pushed, runHash: m.runHash, version: m.version, meta: Wire.Pushed(task: p.task, accepted: false, reason: "shard not serving this run")), id)
      }
      return
    }
    switch m.kind {
    case .fetch:
      if m.version == state.version { _ = workers.send([id, state.parametersMessage(runHash: w.runHash)]) }
      // the next version may be asked for while the update is on its way (only that one:
      // nothing a peer sends can make the queue grow without bound)
      else if m.version == state.version + 1 && waitingFetches.count < 4096 { waitingFetches.append((id, m.version)) }
      else if m.version < state.version { toWorker(Message(.params, runHash: w.runHash, version: m.version), id) }  // gone: an empty body
    case .push: push(state, w, m, from: id)
    case .heartbeat: break
    default: badInput.note("dropped unexpected \(m.kind) message from \(r.peerAddress)")
    }
  }

  private func push(_ state: ShardState, _ w: Wire.ShardWelcome, _ m: Message, from id: Data) {
    guard let p = try? m.decodeMeta(Wire.Push.self) else {
      badInput.note("dropped a push with malformed meta")
      return
    }
    var reason: String?
    if m.version != state.version {
      reason = "push for step \(m.version), this shard is at \(state.version)"
    } else if let block = state.reduction.tree.node(start: p.micro, microbatches: p.microbatches) {
      do {
        if case .refused = try state.add(block: block, body: m.body) { reason = "too many partial sums waiting" }
      } catch { reason = "\(error)" }
    } else {
      reason = "push of microbatches \(p.micro)..<\(p.micro + p.microbatches) is not a block of the step's tree"
    }
    toWorker(Message(.pushed, runHash: w.runHash, version: m.version, meta: Wire.Pushed(task: p.task, accepted: reason == nil, reason: reason)), id)
    if reason == nil && state.isComplete && partialsSent != state.version {
      partialsSent = state.version
      toCoordinator(Message(.partials, runHash: w.runHash, version: state.version, meta: Wire.Partials(index: state.index),
                            body: .doubles(state.normPartials())))
    }
  }

  private func answerWaitingFetches(_ state: ShardState) {
    let now = waitingFetches.filter { $0.version <= state.version }
    waitingFetches.removeAll { $0.version <= state.version }
    for f in now {
      if f.version == state.version { _ = workers.send([f.id, state.parametersMessage(runHash: welcome!.runHash)]) }
      else { toWorker(Message(.params, runHash: welcome!.runHash, version: f.version), f.id) }
    }
  }
}
