import Foundation

/// A progress line on stderr: redrawn in place on a terminal; elsewhere (logs, pipes) a line
/// every `logInterval` seconds of a phase and one when it finishes, so a long phase shows in a
/// log file and a failure leaves only the error line after what completed.
final class ProgressLine {
  private let isTTY = isatty(STDERR_FILENO) != 0
  /// Seconds between progress lines in a log (IGPT_PROGRESS_SECONDS overrides; default 30).
  private let logInterval = ProgressLine.configuredInterval

  /// IGPT_PROGRESS_SECONDS, read once per process; a value that is not a number of seconds is
  /// said once on stderr and the default kept.
  static let configuredInterval: Double = {
    let fallback = 30.0
    guard let text = ProcessInfo.processInfo.environment["IGPT_PROGRESS_SECONDS"] else { return fallback }
    if let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds >= 0 { return seconds }
    FileHandle.standardError.write(Data("igpt: ignoring IGPT_PROGRESS_SECONDS=\(text) (not a number of seconds >= 0); progress lines every \(Int(fallback)) s\n".utf8))
    return fallback
  }()
  private var phase = ""
  private var lastDraw = Date.distantPast
  private var lastLog = Date()
  private let start = Date()
  private var phaseStart = Date()

  /// Reports `done` of `total` in `phase`.
  func update(_ phase: String, _ done: Int, _ total: Int) {
    if phase != self.phase {
      if !self.phase.isEmpty { finishPhase() }
      self.phase = phase
      phaseStart = Date()
      lastLog = phaseStart
    }
    if !isTTY, done < total, Date().timeIntervalSince(lastLog) >= logInterval {
      lastLog = Date()
      write(String(format: "%@ %d/%d (%.0f%%) after %.0fs\n", phase as NSString, done, total,
                   total > 0 ? 100 * Double(done) / Double(total) : 0, lastLog.timeIntervalSince(phaseStart)))
    }
    guard isTTY, Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
    lastDraw = Date()
    let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
    let width = 30
    let filled = Int(fraction * Double(width))
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    write(String(format: "\r%-9@ [%@] %3.0f%% %d/%d  %.1fs", phase as NSString, bar as NSString,
                 fraction * 100, done, total, Date().timeIntervalSince(start)))
  }

  private func finishPhase() {
    if isTTY {
      write("\n")
    } else {
      write(String(format: "%@ done in %.1fs\n", phase as NSString, Date().timeIntervalSince(phaseStart)))
    }
  }

  /// A log line during the phase: on a terminal it replaces the bar, which the next update draws again.
  func log(_ s: String) {
    write(isTTY && !phase.isEmpty ? "\r\u{1B}[K" + s + "\n" : s + "\n")
  }

  /// Ends the last phase's line after success.
  func finish() {
    if !phase.isEmpty { finishPhase() }
    phase = ""
  }

  /// Ends after a failure: on a terminal, closes the line; elsewhere, adds nothing.
  func abandon() {
    if isTTY && !phase.isEmpty { write("\n") }
    phase = ""
  }

  private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
