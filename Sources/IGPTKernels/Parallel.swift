import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Fixed, deterministic work splitting over igpt's own threads.
///
/// `Parallel.threads` is set once at start (`--threads`); every kernel splits its work into that
/// many contiguous chunks, so which element each thread computes, and in what order it sums, is a
/// function of the thread count alone: runs repeat bit for bit.
public enum Parallel {
  /// Number of threads kernels split their work across: the process's setting, or on this
  /// thread the one `withThreads` gives for a while.
  public static var threads: Int {
    get {
      if let o = pthread_getspecific(threadsKey) { return Int(bitPattern: o) }
      return processThreads
    }
    set { processThreads = newValue }
  }

  nonisolated(unsafe) private static var processThreads = 1

  /// Runs `body` with `threads` = n for the kernels this thread calls, and only for them: a
  /// measurement at another thread count (the numerics probe) must not change the count under
  /// kernels other threads are running, whose scratch was sized for it.
  public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
    let outer = pthread_getspecific(threadsKey)
    pthread_setspecific(threadsKey, UnsafeRawPointer(bitPattern: max(1, n)))
    defer { pthread_setspecific(threadsKey, outer) }
    return try body()
  }

  private static let threadsKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
  }()

  /// Calls `body(chunk, range)` for `threads` contiguous chunks of 0..<count, in parallel.
  /// Chunk boundaries are rounded to multiples of `align` (except the last).
  @inline(__always)
  public static func forChunks(
    _ count: Int, align: Int = 1, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void
  ) {
    let n = isSerial ? 1 : min(threads, max(1, count / max(align, 1)))
    if n <= 1 {
      body(0, 0..<count)
      return
    }
    withoutActuallyEscaping(body) { body in
      let box = UnsafeBox(body)
      DispatchQueue.concurrentPerform(iterations: n) { i in
        box.value(i, chunkRange(i, of: n, count: count, align: align))
      }
    }
  }

  /// Runs `body` with every `forChunks` it reaches on this thread unsplit (one chunk), for
  /// callers that already split the work across threads at a coarser grain (whole images).
  public static func serially<R>(_ body: () -> R) -> R {
    let outer = pthread_getspecific(serialKey)
    pthread_setspecific(serialKey, UnsafeRawPointer(bitPattern: 1))
    defer { pthread_setspecific(serialKey, outer) }
    return body()
  }

  /// Whether this thread is inside `serially`.
  public static var isSerial: Bool { pthread_getspecific(serialKey) != nil }

  private static let serialKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
  }()

  /// The i-th of n contiguous chunks of 0..<count with boundaries aligned to `align`.
  @inline(__always)
  public static func chunkRange(_ i: Int, of n: Int, count: Int, align: Int = 1) -> Range<Int> {
    let units = (count + align - 1) / align
    let lo = min(count, (units * i / n) * align)
    let hi = i == n - 1 ? count : min(count, (units * (i + 1) / n) * align)
    return lo..<hi
  }
}

/// Carries a non-Sendable value (a closure over raw pointers) into `concurrentPerform`;
/// safe because every chunk touches disjoint memory.
struct UnsafeBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
