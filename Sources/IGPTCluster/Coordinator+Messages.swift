import Foundation
import IGPTProbe
import IGPTTraining

/// The coordinator's dispatch: each message checked and handed to the part that decides,
/// and each decision sent.
extension Coordinator {
  func handle(_ received: ZMQSocket.Received) {
    guard received.frames.count == 2 else {
      badInput.note("dropped a \(received.frames.count)-frame message from \(received.peerAddress)")
      return
    }
    let id = received.frames[0], bytes = received.frames[1], address = received.peerAddress
    clock.bytesIn += bytes.count
    guard let m = decoded(bytes, from: id, address: address) else { return }
    if tookAsShard(m, from: id, address: address) { return }
    members.heard(id, bytes: bytes.count, now: Date())
    switch m.kind {
    case .hello: hello(m, from: id, address: address)
    case .statusRequest: send(Message(.statusReply, runHash: runHash, version: version, meta: status()), to: id)
    case .probeSubmit: submitProbe(m, from: id, address: address)
    case .probeListRequest: send(Message(.probeList, runHash: runHash, meta: Wire.ProbeList(jobs: probes.queue.jobs.reversed())), to: id)
    case .heartbeat, .ready, .result, .fetch:
      guard members[id] != nil, m.runHash == runHash else {
        if waitingHellos.contains(where: { $0.1 == id }) { return }  // welcomed once the shards are restored
        badInput.note("\(m.kind) from unknown peer \(address): asking it to say hello")
        send(Message(.reset, runHash: runHash), to: id)
        return
      }
      do {
        switch m.kind {
        case .ready: try ready(m, from: id)
        case .result: try result(m, from: id)
        case .fetch: fetch(m, from: id)
        default: break
        }
      } catch {
        badInput.note("dropped \(m.kind) from \(members[id]?.label ?? address): \(error)")
      }
    default:
      badInput.note("dropped unexpected \(m.kind) message from \(address)")
    }
  }

  /// A shard's hello, or any message from an admitted shard: handled here (true).
  private func tookAsShard(_ m: Message, from id: Data, address: String) -> Bool {
    if m.kind == .shardHello {
      shardHello(m, from: id, address: address)
      return true
    }
    guard let k = shards?.index(of: id) else { return false }
    shards!.heard(id, now: Date())
    do { try fromShard(m, k) } catch { badInput.note("dropped \(m.kind) from shard \(k + 1): \(error)") }
    return true
  }

  /// The message in `bytes`, or nil (said, rate-limited; a peer of another protocol version is
  /// told so) when it does not check.
  private func decoded(_ bytes: Data, from id: Data, address: String) -> Message? {
    do { return try Message.decode(bytes) } catch let e as ProtocolError {
      badInput.note("dropped message from \(address): \(e)")
      if e.otherVersion != nil {
        send(Message(.refuse, meta: Wire.Refuse(reason: "coordinator speaks protocol version \(Message.protocolVersion); \(e)", fatal: true)), to: id)
      }
    } catch {
      badInput.note("dropped message from \(address): \(error)")
    }
    return nil
  }

  func hello(_ m: Message, from id: Data, address: String) {
    let h: Wire.Hello
    do { h = try m.decodeMeta(Wire.Hello.self) } catch {
      badInput.note("dropped hello from \(address): \(error)")
      return
    }
    switch members.admit(h, address: address, numerics: numerics) {
    case .refuse(let reason, let fatal, let pin, let line):
      events.record("refused", ["worker": h.name, "address": address, "reason": reason, "fatal": fatal], line: line)
      send(Message(.refuse, meta: Wire.Refuse(reason: reason, fatal: fatal, pin: pin)), to: id)
    case .welcome where shards.map({ !$0.allAt(version) }) ?? false:
      waitingHellos.removeAll { $0.1 == id }
      waitingHellos.append((m, id, address))  // welcomed once every shard is restored
    case .welcome(let otherNumerics):
      if members[id] != nil { drop(id, because: "it said hello again") }
      members.join(id, h, address: address, otherNumerics: otherNumerics, now: Date())
      scheduler.join(id)
      events.record("join", ["worker": h.name, "address": address, "host": h.host, "pid": Int(h.pid), "workers": members.count],
                    line: "worker \(h.name) joined from \(address) (pid \(h.pid) on \(h.host)); \(members.count) connected")
      let w = Wire.Welcome(runHash: runHash, model: trainer.model.config, threads: numerics.fingerprint.threads, codec: config.cluster.codec,
                           heartbeatInterval: interval, heartbeatMisses: config.cluster.heartbeatMisses, step: trainer.step,
                           steps: training.end, recompute: config.train.recompute, numerics: numerics.fingerprint, policy: numerics.policy,
                           shards: shards?.endpoints ?? [])
      send(Message(.welcome, runHash: runHash, version: version, meta: w), to: id)
    }
  }

  /// How much work the worker can take, and which tasks it still holds (any others it dropped).
  func ready(_ m: Message, from id: Data) throws {
    let r = try m.decodeMeta(Wire.Ready.self)
    if let why = members.checkNumerics(id, r.numerics, numerics: numerics) {
      events.record("refused", ["worker": members[id]!.name, "reason": why], line: "refused worker \(members[id]!.label): \(why)")
      send(Message(.refuse, meta: Wire.Refuse(reason: "this run's numerics cannot be had here: \(why)", fatal: true)), to: id)
      drop(id, because: "its numerics are not the run's")
      return
    }
    scheduler.markEligible(id)
    scheduler.ready(id, credit: r.credit, holding: Set(r.holding))
    members.update(id) { $0.parameterVersion = r.parameterVersion }
  }

  /// A finished task: checked against its task, then summed, stored or recorded; a result
  /// that proves unusable is computed again.
  func result(_ m: Message, from id: Data) throws {
    guard let record = members[id], record.numericsChecked else { return }  // no work before its numerics are
    // (marked even if this result turns out unusable: it was computed with other numerics)
    if let why = members.takeOtherNumerics(id) { markNotReproducible(because: "worker \(record.label) contributed: \(why)") }
    let r = try m.decodeMeta(Wire.Result.self)
    switch scheduler.complete(id, task: r.id) {
    case .unknown, .duplicate: return  // of an earlier phase or job, or already in
    case .first: break
    }
    do { try use(r, m.body, version: m.version, from: id) } catch {
      scheduler.retry([r.id])
      throw error
    }
    members.update(id) { $0.microbatchesDone += max(1, r.losses.count) }
  }

  private func use(_ r: Wire.Result, _ body: Data, version v: UInt64, from id: Data) throws {
    if r.kind == .features {
      guard try probes.store(version: v, task: r.id, payload: body, seconds: r.seconds) else { throw ProtocolError("features for another task") }
      return
    }
    guard v == version, let t = phase[r.id]?.meta, t.kind == r.kind, t.step == r.step, t.micro == r.micro else {
      throw ProtocolError("result does not match its task")
    }
    clock.computed(by: id, seconds: r.seconds)
    slowestTask = max(slowestTask, min(r.seconds, 3600))
    switch t.kind {
    case .features: throw ProtocolError("features result for a training task")
    case .validation:
      guard body.isEmpty, r.losses.count == 1 else { throw ProtocolError("validation result with a body or without its loss") }
      phase.validationLosses[t.micro] = r.losses[0]
    case .gradient:
      probes.noteTraining(seconds: r.seconds)
      clock.gradients += 1
      if shards != nil {  // the shards took the gradient before the worker sent this result
        guard body.isEmpty else { throw ProtocolError("gradient result with a body: this run's gradients go to its shards") }
        return try server.checkLosses(block: phase[r.id]!.block!, r.losses, record: true)
      }
      switch try server.add(block: phase[r.id]!.block!, body: body, losses: r.losses) {
      case .accepted(let evicted):
        let again = evicted.compactMap { phase.task(for: $0) }
        if !again.isEmpty { scheduler.retry(again, atBack: true) }
        if !again.isEmpty { events.record("evicted", ["step": t.step, "tasks": again.map { Int($0) }]) }
      case .refused:
        scheduler.retry([r.id], atBack: true)
        events.record("refused_partial_sum", ["step": t.step, "task": Int(r.id)])
      case .duplicate: break
      }
    }
  }

  /// It lacks the parameters of a task it holds (it keeps the task and waits for them).
  func fetch(_ m: Message, from id: Data) {
    if let run = probes.current, m.version == run.version {
      if send(Message(.params, runHash: runHash, version: run.version, body: run.paramsPayload), to: id) {
        members.update(id) { $0.probeSnapshot = run.version }
      }
    } else if m.version >= Message.probeSnapshotBase {
      // that probe job is over: an empty body says so, and the worker drops its tasks
      send(Message(.params, runHash: runHash, version: m.version), to: id)
    } else if shards != nil {
      badInput.note("dropped a fetch of training parameters: this run's are served by its shards")
    } else if send(encoded: server.parametersMessage(runHash: runHash), to: id) {
      members.update(id) { $0.parameterVersion = version }
    }
  }

  /// Queues a probe job from an operator; the reply lists jobs, the new one first.
  func submitProbe(_ m: Message, from id: Data, address: String) {
    let req: Wire.ProbeSubmit
    do { req = try m.decodeMeta(Wire.ProbeSubmit.self) } catch {
      badInput.note("dropped probe submission from \(address): \(error)")
      return
    }
    let request = ProbeJob.Request(config.probes, overriddenBy: req)
    if let problem = request.problem(modelLayers: trainer.model.config.layers) {
      send(Message(.refuse, meta: Wire.Refuse(reason: problem, fatal: false)), to: id)
      return
    }
    let job = probes.add(request, origin: "submitted", step: trainer.step)
    events.record("probe_queued", ["job": job.id, "step": trainer.step, "origin": "submitted", "from": address],
                  line: "probe \(job.id) submitted from \(address): layers \(request.layers), \(request.trainImages) train images\(request.extras)")
    send(Message(.probeList, runHash: runHash, meta: Wire.ProbeList(jobs: [job] + probes.queue.jobs.filter { $0.id != job.id }.reversed())), to: id)
  }

  // MARK: - Sending

  /// Sends each assigned task, with the parameters it needs first when the worker lacks them.
  func dispatch(_ assignments: [Scheduler.Assignment]) {
    for a in assignments where members[a.worker] != nil {
      if let t = phase[a.task] {
        if shards == nil && members[a.worker]!.parameterVersion != version {
          guard send(encoded: server.parametersMessage(runHash: runHash), to: a.worker) else { continue }
          members.update(a.worker) { $0.parameterVersion = version }
        }
        send(Message(.task, runHash: runHash, version: version, meta: t.meta, body: t.body), to: a.worker)
      } else if let run = probes.current, let t = run.task(a.task) {
        if members[a.worker]!.probeSnapshot != run.version {
          guard send(Message(.params, runHash: runHash, version: run.version, body: run.paramsPayload), to: a.worker) else { continue }
          members.update(a.worker) { $0.probeSnapshot = run.version }
        }
        send(Message(.task, runHash: runHash, version: run.version, meta: t.meta, body: t.body), to: a.worker)
      }
    }
  }

  /// Sends to a peer; false (and the worker dropped) when it is gone or its queue is full.
  @discardableResult
  func send(_ m: Message, to id: Data) -> Bool {
    let start = Date()
    let bytes = m.encode()
    clock.sendSeconds += Date().timeIntervalSince(start)
    return send(encoded: bytes, to: id)
  }

  /// Sends a framed message (one framed once for many peers).
  @discardableResult
  func send(encoded bytes: Data, to id: Data) -> Bool {
    let start = Date()
    defer { clock.sendSeconds += Date().timeIntervalSince(start) }
    switch socket.send([id, bytes]) {
    case .sent:
      members.sent(id, bytes: bytes.count)
      clock.bytesOut += bytes.count
      return true
    case .unreachable: drop(id, because: "unreachable")
    case .wouldBlock: drop(id, because: "its queue is full (stuck?)")
    }
    return false
  }

  /// Drops silent workers (their tasks go back to the queue) and re-issues tasks held too long
  /// by a worker that still answers heartbeats (stuck).
  func expire(now: Date) {
    for (id, seconds) in members.silent(now: now, deadAfter: interval * Double(config.cluster.heartbeatMisses)) {
      drop(id, because: String(format: "no heartbeat for %.1f s", seconds), event: "dead")
    }
    for id in scheduler.expire(now: now, limit: max(config.cluster.taskTimeout, 5 * slowestTask)) {
      let what = phase[id].map { t in "\(t.meta.kind == .gradient ? "microbatch" : "validation microbatch") \(Self.describe(t.meta)) of step \(t.meta.step)" }
        ?? "probe \(probes.current?.jobId ?? 0) feature microbatch \(probes.current?.task(id)?.meta.micro ?? 0)"
      events.record("reissued", ["task": Int(id), "step": trainer.step, "what": what],
                    line: String(format: "%@ out for %.0f s: also handing it to another worker", what, max(config.cluster.taskTimeout, 5 * slowestTask)))
    }
  }

  static func describe(_ t: Wire.Task) -> String { t.microbatches > 1 ? "\(t.micro)..<\(t.micro + t.microbatches)" : "\(t.micro)" }

  func drop(_ id: Data, because why: String, event: String = "leave") {
    guard let w = members.remove(id) else { return }
    let back = scheduler.leave(id)
    events.record(event, ["worker": w.name, "address": w.address, "why": why, "requeued": back.count, "workers": members.count,
                          "microbatches": w.microbatchesDone],
                  line: "worker \(w.label) lost: \(why); \(back.count) task(s) go to others (\(members.count) left)")
  }
}
