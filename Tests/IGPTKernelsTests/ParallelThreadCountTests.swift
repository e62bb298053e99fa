import Foundation
import Testing
@testable import IGPTKernels

/// A thread count given for a while on one thread (the numerics probe's) is not seen by
/// kernels on other threads, whose scratch was sized for the process's count.
///
/// Other suites set the process's count (to 2) while this runs, so the test asserts only what
/// is this thread's: the local count (7, which nothing sets process-wide) is seen here, not on
/// another thread, and not here after `withThreads` returns.
@Suite struct ParallelThreadCountTests {
  @Test func withThreadsIsLocalToItsThread() {
    let local = 7
    let seen = Parallel.withThreads(local) { () -> (Int, Int) in
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
    #expect(seen.0 == local, "this thread saw \(seen.0)")
    #expect(seen.1 != local && seen.1 >= 1, "another thread saw \(seen.1)")
    #expect(Parallel.threads != local, "the local count outlived withThreads")
  }
}
