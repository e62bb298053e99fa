import Foundation
import IGPTModel

/// A worker's connection to one parameter-server shard.
struct ShardLink {
  let endpoint: Wire.ShardEndpoint
  let socket: ZMQSocket
  var range: Range<Int> { endpoint.lower..<endpoint.upper }
}

/// The worker's side of parameter-server shards: parameters assembled from every shard's
/// slice, each gradient pushed slice by slice, and the result sent to the coordinator only
/// once every shard has taken its slice (so a result in means the gradient is in).
extension Worker {
  /// Connects to the welcome's shards (again only when they changed).
  func connectShards(_ list: [Wire.ShardEndpoint]) throws {
    guard list != shards.map(\.endpoint) else { return }
    for s in shards { s.socket.close() }
    shards = try list.map { e in
      let s = try ZMQSocket(.dealer)
      try s.setHighWaterMarks(64)
      if var keys = options.keys {
        if let p = e.publicKey, let key = CurveKey(z85: p) { keys.server = key }
        try keys.apply(to: s)
      }
      try s.connect(e.endpoint)
      return ShardLink(endpoint: e, socket: s)
    }
    slicesIn = [:]
    sliceVersion = nil
    pushing = [:]
    if !list.isEmpty { options.log("parameters and gradients go to \(list.count) shards: \(list.map(\.endpoint).joined(separator: ", "))") }
  }

  /// Asks every shard for its slice of parameter version `version`.
  func fetchFromShards(_ version: UInt64, runHash: UInt64) {
    guard sliceVersion != version else { return }
    sliceVersion = version
    slicesIn = [:]
    for s in shards { _ = s.socket.send([Message(.fetch, runHash: runHash, version: version).encode()]) }
  }

  /// Parameter slices and push answers waiting on the shard sockets.
  func receiveFromShards() {
    for (k, s) in shards.enumerated() {
      while let r = s.socket.receive() {
        guard r.frames.count == 1, let m = try? Message.decode(r.frames[0]), m.runHash == welcome?.runHash else {
          badInput.note("dropped a malformed message from shard \(s.endpoint.endpoint)")
          continue
        }
        switch m.kind {
        case .params: slice(m, from: k)
        case .pushed: pushed(m, from: k)
        default: badInput.note("dropped unexpected \(m.kind) message from shard \(s.endpoint.endpoint)")
        }
      }
    }
  }

  private func slice(_ m: Message, from k: Int) {
    guard m.version == sliceVersion, let model else { return }
    if m.body.isEmpty {  // the shards moved past that version: its tasks are obsolete
      pendingTasks.removeAll { $0.message.version == m.version }
      sliceVersion = nil
      sendReady()
      return
    }
    slicesIn[k] = m.body
    guard slicesIn.count == shards.count else { return }
    do {
      if !options.emulate {
        for (k, s) in shards.enumerated() { try GradientCodec.decode(slicesIn[k]!, into: model.params + s.range.lowerBound, count: s.range.count) }
      }
      parameterVersion = m.version
    } catch {
      badInput.note("dropped parameters from the shards: \(error)")
    }
    slicesIn = [:]
    sliceVersion = nil
  }

  /// Pushes a gradient's slices; the result waits for every shard's answer.
  func push(_ result: Message, _ slices: [Data]) {
    guard let r = try? result.decodeMeta(Wire.Result.self), slices.count == shards.count else { return }
    pushing[r.id] = (result, Set(shards.indices))
    let meta = Wire.Push(task: r.id, micro: r.micro, microbatches: r.losses.count)
    for (s, body) in zip(shards, slices) {
      _ = s.socket.send([Message(.push, runHash: result.runHash, version: result.version, meta: meta, body: body).encode()])
    }
  }

  private func pushed(_ m: Message, from k: Int) {
    guard let p = try? m.decodeMeta(Wire.Pushed.self), var entry = pushing[p.task] else { return }
    guard p.accepted else {
      pushing[p.task] = nil
      badInput.note("shard \(shards[k].endpoint.endpoint) did not take task \(p.task)'s gradient (\(p.reason ?? "no reason")): dropped")
      sendReady()
      return
    }
    entry.waiting.remove(k)
    guard entry.waiting.isEmpty else {
      pushing[p.task] = entry
      return
    }
    pushing[p.task] = nil
    if !unsent.isEmpty || !send(entry.result) { unsent.append((p.task, entry.result)) }
  }
}
