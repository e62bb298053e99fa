import Foundation
import IGPTKernels
import IGPTModel

/// The worker's dispatch: each message from the coordinator checked and acted on.
extension Worker {
  /// Handles one message; returns an outcome when the worker must stop.
  func handle(_ r: ZMQSocket.Received) throws -> Outcome? {
    guard let m = decoded(r) else { return nil }
    switch m.kind {
    case .welcome: try welcomed(m)
    case .refuse: return try refused(m)
    case .reset: forgetTheRun()
    case .done: return .done(step: (try? m.decodeMeta(Wire.Done.self))?.step ?? -1)
    case .params:
      guard m.runHash == welcome?.runHash else { return nil }
      if m.version >= Message.probeSnapshotBase { pendingProbeParams = m } else { pendingParams = m }
    case .task:
      guard m.runHash == welcome?.runHash else { return nil }
      do { pendingTasks.append((m, try m.decodeMeta(Wire.Task.self))) } catch {
        badInput.note("dropped task: \(error)")
        sendReady()
      }
    case .heartbeat: break
    default: badInput.note("dropped unexpected \(m.kind) message from the coordinator")
    }
    return nil
  }

  /// The message in a one-frame ZeroMQ message, or nil (said, rate-limited) when malformed.
  private func decoded(_ r: ZMQSocket.Received) -> Message? {
    guard r.frames.count == 1 else {
      badInput.note("dropped a \(r.frames.count)-frame message from the coordinator")
      return nil
    }
    do { return try Message.decode(r.frames[0]) } catch {
      badInput.note("dropped message from the coordinator: \(error)")
      return nil
    }
  }

  private func welcomed(_ m: Message) throws {
    let w: Wire.Welcome
    do { w = try m.decodeMeta(Wire.Welcome.self) } catch {
      badInput.note("dropped welcome: \(error)")
      return
    }
    if slot.lock.withLock({ slot.busy }) {
      pendingWelcome = w  // set up once the job in hand is done
    } else {
      try setUp(w)
      sendReady()
    }
  }

  /// A refusal: fatal ends the worker; a pin re-executes it on the run's kernels; else hello again.
  private func refused(_ m: Message) throws -> Outcome? {
    let why: Wire.Refuse
    do { why = try m.decodeMeta(Wire.Refuse.self) } catch {
      badInput.note("dropped refuse: \(error)")
      return nil
    }
    if let core = why.pin {
      options.log("\(why.reason): pinning this worker to OpenBLAS \(core) kernels (it loaded \(BLAS.coreName)) and re-executing")
      socket?.close()
      do { try OpenBLASCoreType.pin(to: core) } catch { return .refused("\(error)") }
    }
    if why.fatal { return .refused(why.reason) }
    sendHello()
    return nil
  }

  /// The coordinator does not know this worker (it restarted): start over with a hello.
  private func forgetTheRun() {
    options.log("coordinator does not know this worker (restarted?): saying hello again")
    welcome = nil
    pendingWelcome = nil
    unsent = []
    pendingParams = nil
    pendingProbeParams = nil
    fetchSent = false
    pendingTasks = []
    sendHello()
  }
}
