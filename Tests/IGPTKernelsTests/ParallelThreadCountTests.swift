import Foundation
import Testing
@testable import IGPTKernels

/// A thread count given for a while on one thread (the numerics probe's) is not seen by
/// kernels on other threads, whose scratch was sized for the process's count.
@Suite struct ParallelThreadCountTests {
  @Test func withThreadsIsLocalToItsThread() {
    let process = Parallel.threads
    let seen = Parallel.withThreads(process + 5) { () -> (Int, Int) in
      var other = -1
      let t = Thread { other = Parallel.threads }
      let done = DispatchSemaphore(value: 0)
      let waiter = Thread {
        t.start()
        while !t.isFinished { usleep(1000) }
        done.signal()
      }
      waiter.start()
      done.wait()
      return (Parallel.threads, other)
    }
    #expect(seen.0 == process + 5 && seen.1 == process && Parallel.threads == process, "\(seen)")
  }
}
