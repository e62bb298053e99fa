import ArgumentParser
import Foundation
import IGPTReport

/// `igpt report`: a run's charts, samples and cluster timeline as one self-contained HTML file.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write a run's report: one self-contained HTML page (charts as inline SVG, images embedded).",
    discussion: """
      Training loss and validation loss (nats and bits per token) against steps and tokens, the learning rate and throughput; probe accuracy per layer against the raw-pixel floor with the best layer marked, best-layer accuracy against validation loss, every probe result as a table; the run's PNG images; for cluster runs the workers over time, each step's compute/transfer/wait split, bytes on the wire and the join/leave/re-issue events; the config and numerics fingerprint. Each chart names the file and lines its numbers come from; parts the run lacks are listed, not fatal. Long series are downsampled (each chart draws at most 400 points per line), so the page stays small.

      Example: igpt report runs/small && xdg-open runs/small/report.html
      """)

  @Argument(help: "A run directory (igpt train --run, igpt coordinator --run).") var runDir: String
  @Option(help: "Output file (default: RUN/report.html).") var out: String?
  @Flag(help: "Keep rewriting the report whenever a new checkpoint appears (until interrupted).") var watch = false

  func validate() throws {
    var dir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: runDir, isDirectory: &dir), dir.boolValue else {
      throw ValidationError("\(runDir) is not a run directory")
    }
  }

  func run() throws {
    let path = out ?? (runDir as NSString).appendingPathComponent("report.html")
    var last = ""
    repeat {
      let newest = (try? FileManager.default.contentsOfDirectory(atPath: runDir + "/checkpoints"))?.filter { $0.hasPrefix("step-") }.max() ?? ""
      if newest != last || last.isEmpty {
        last = newest.isEmpty ? "-" : newest
        try write(to: path)
      }
      if watch { for _ in 0..<20 where StopSignal.received == 0 { usleep(100_000) } }
    } while watch && StopSignal.received == 0
    if watch { StopSignal.acknowledge() }
  }

  func write(to path: String) throws {
    var report = RunReport(runDir: runDir)
    report.version = IGPTCommand.version
    let html = Data(report.html().utf8)
    do { try html.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
      throw CleanError("\(path): cannot be written (\((error as NSError).localizedDescription))")
    }
    for line in report.missing { logLine("report: not in the run: \(line)") }
    print(String(format: "wrote %@ (%.0f kB)", path, Double(html.count) / 1000))
  }
}
