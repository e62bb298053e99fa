import Foundation

/// Runs the built `igpt` binary as a real process.
enum IGPTBinary {
  /// $IGPT_BINARY if set (e.g. an AVX2 build in .build-haswell, cluster/README.md), else
  /// .build/release/igpt (built by `make test` before the tests), else .build/debug/igpt.
  static var url: URL {
    if let path = ProcessInfo.processInfo.environment["IGPT_BINARY"], !path.isEmpty { return URL(fileURLWithPath: path) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    for config in ["release", "debug"] {
      let u = root.appendingPathComponent(".build/\(config)/igpt")
      if FileManager.default.isExecutableFile(atPath: u.path) { return u }
    }
    return root.appendingPathComponent(".build/release/igpt")
  }

  struct Result {
    let status: Int32
    let stdout: String
    let stderr: String
  }

  /// Runs igpt with arguments and an environment edit (nil value = unset), waiting for it to end.
  static func run(_ args: [String], environment edits: [String: String?] = [:]) throws -> Result {
    let p = Process()
    p.executableURL = url
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in edits { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // read stderr on another thread: a child that fills one pipe while we wait on the other
    // would block forever
    let box = ErrBox()
    let reader = Thread { box.data = err.fileHandleForReading.readDataToEndOfFile(); box.done.signal() }
    reader.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    box.done.wait()
    let e = box.data
    p.waitUntilExit()
    return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                  stderr: String(decoding: e, as: UTF8.self))
  }

  final class ErrBox: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
  }

  static func json(_ text: String) throws -> [String: Any] {
    let line = text.split(separator: "\n").last.map(String.init) ?? ""
    return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
  }
}
